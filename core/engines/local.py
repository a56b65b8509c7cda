"""The local engine: one process segments the images in order while a thread decodes ahead."""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterator

from core.engines import ClusterOptions, ImageJob, ImageResult, WorkerOptions

PREFETCH = 2        # images decoded ahead of the one being segmented (bounds memory)


def run_local(items: list[tuple[int, str]], options: WorkerOptions,
              cluster: ClusterOptions | None = None) -> Iterator[ImageResult]:
    """Segment `items` here, one by one; decoding runs on its own thread so the encoder never waits."""
    job = ImageJob(options)
    try:
        yield from _segment_prefetched(job, items)
    finally:
        job.close()


def _segment_prefetched(job: ImageJob, items: list[tuple[int, str]]) -> Iterator[ImageResult]:
    pending: deque[tuple[int, str, Future]] = deque()
    todo = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cuttree-decode") as pool:
        def fill() -> None:
            while len(pending) <= PREFETCH:
                item = next(todo, None)
                if item is None:
                    return
                pending.append((item[0], item[1], pool.submit(job.load, item[1])))
        fill()
        while pending:
            index, source, decoded = pending.popleft()
            fill()
            yield job.segment(index, source, decoded.result())
