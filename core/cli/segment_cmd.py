"""`segment IMAGE_OR_DIR... --out DIR`: label map, overlay and COCO instances per image."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from core.cli.settings_args import add_settings_arguments, settings_from_args
from core.atomic_io import atomic_write_bytes, atomic_write_png
from core.errors import CutTreeError, printable
from core.export.coco import write_coco_instances
from core.image_io import IMAGE_EXTENSIONS, list_images, load_working_image
from core.pipeline import Segmenter
from core.render import frontier_colors, label_png_bytes, overlay


def register(subparsers: "argparse._SubParsersAction") -> None:
    parser = subparsers.add_parser(
        "segment", help="segment images and write label maps, overlays and COCO files",
        description="Segment each image; per image write STEM_labels.png (segment index per "
                    "pixel), STEM_overlay.png and STEM_coco.json (class-agnostic COCO instances, "
                    "compressed RLE). Images larger than max_mask_side are segmented at that size; "
                    "labels and COCO masks are written at full size, the overlay at the working size. "
                    "A file that cannot be read or written is reported and skipped; the exit code is "
                    "1 when any image failed.")
    parser.add_argument("inputs", nargs="+", type=Path, help="image files or folders of images")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    parser.add_argument("--recursive", action="store_true", help="look into sub-folders too")
    add_settings_arguments(parser)
    parser.set_defaults(handler=run)


def collect_images(inputs: list[Path], recursive: bool) -> list[Path]:
    """Files as given, and the images inside folders."""
    out: list[Path] = []
    for path in inputs:
        if path.is_dir():
            out.extend(list_images(path, recursive=recursive))
        else:
            out.append(path)
    return out


def output_stem(path: Path, taken: set[str]) -> str:
    """The image's file stem, made unique among the outputs of this run."""
    stem, n = path.stem, 2
    while stem in taken:
        stem, n = f"{path.stem}-{n}", n + 1
    taken.add(stem)
    return stem


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        images = collect_images(args.inputs, args.recursive)
    except CutTreeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not images:
        print(f"error: no images found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})", file=sys.stderr)
        return 2
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = "it is a file, not a folder" if isinstance(exc, FileExistsError) else exc.strerror or exc
        print(f"error: cannot use {printable(str(args.out))} as the output folder: {reason}", file=sys.stderr)
        return 2
    segmenter = Segmenter(settings)
    failed, taken = [], set()
    bar = tqdm(images, unit="image", file=sys.stderr, disable=None)
    for path in bar:
        bar.set_postfix_str(printable(path.name))
        try:
            segment_one(segmenter, path, args.out, output_stem(path, taken))
        except (CutTreeError, MemoryError) as exc:
            failed.append(path)
            message = str(exc) if isinstance(exc, CutTreeError) else f"{path}: not enough memory to segment it"
            tqdm.write(f"error: {printable(message)}", file=sys.stderr)
    done = len(images) - len(failed)
    print(f"{done} of {len(images)} images segmented into {args.out} "
          f"with the {segmenter.encoder.name} encoder and the {settings.cut_method} method"
          + (f"; {len(failed)} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def segment_one(segmenter: Segmenter, path: Path, out: Path, stem: str) -> None:
    """Segment one image file (at the working resolution) and write its three outputs, all or none."""
    image, full_size = load_working_image(path, segmenter.settings.max_mask_side)
    features = segmenter.encode(image)
    tree = segmenter.cut(image, features, full_size=full_size)
    outputs = {out / f"{stem}_labels.png": lambda p: atomic_write_bytes(p, label_png_bytes(tree)),
               out / f"{stem}_overlay.png": lambda p: atomic_write_png(
                   p, overlay(image, tree.frontier_labels()[0], frontier_colors(tree)), compress_level=1),
               out / f"{stem}_coco.json": lambda p: write_coco_instances(p, [(path.name, tree)])}
    written: list[Path] = []
    try:
        for target, write in outputs.items():
            write(target)
            written.append(target)
    except OSError as exc:
        for done in written:
            done.unlink(missing_ok=True)
        raise CutTreeError(f"cannot write {target}: {exc.strerror or exc} "
                           f"(nothing was kept for {path.name})") from exc
