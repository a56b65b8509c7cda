"""Test hooks for dataset runs: a Segmenter whose encoder kills its own process on chosen images.

The Ray tests send these to workers by value (`ray.cloudpickle.register_pickle_by_value`), so the
workers need not import `tests`. An image is chosen by its size, the one thing `encode` sees.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Optional

import numpy as np

from core.pipeline import Segmenter
from core.settings import Settings


class KillingSegmenter(Segmenter):
    """Kills its process (SIGKILL) when encoding an image of a chosen size: once per marker file
    (the first worker to reach it dies, its successor goes on), or every time without one."""

    def __init__(self, settings: Settings, victims: dict[tuple[int, int], Optional[str]]) -> None:
        super().__init__(settings)
        self.victims = victims

    def encode(self, image: np.ndarray, *args, **kwargs):
        shape = tuple(image.shape[:2])
        if shape in self.victims:
            marker = self.victims[shape]
            if marker is None or not Path(marker).exists():
                if marker is not None:
                    Path(marker).write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
        return super().encode(image, *args, **kwargs)


def killing_factory(victims: dict[tuple[int, int], Optional[str]]):
    """A `make_segmenter` for WorkerOptions."""
    return lambda settings: KillingSegmenter(settings, victims)
