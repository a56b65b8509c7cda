"""`segment IMAGE_OR_DIR... --out DIR`: label map, overlay and COCO instances per image."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from core.cli.settings_args import add_settings_arguments, settings_from_args
from core.errors import CutTreeError
from core.export.coco import write_coco_instances
from core.image_io import IMAGE_EXTENSIONS, list_images, load_image
from core.pipeline import Segmenter
from core.render import frontier_colors, frontier_label_image, overlay, save_label_png


def register(subparsers: "argparse._SubParsersAction") -> None:
    parser = subparsers.add_parser(
        "segment", help="segment images and write label maps, overlays and COCO files",
        description="Segment each image; per image write STEM_labels.png (segment index per "
                    "pixel), STEM_overlay.png and STEM_coco.json (class-agnostic COCO instances, "
                    "compressed RLE). A file that cannot be read is reported and skipped.")
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
    args.out.mkdir(parents=True, exist_ok=True)
    segmenter = Segmenter(settings)
    failed, taken = [], set()
    bar = tqdm(images, unit="image", file=sys.stderr, disable=None)
    for path in bar:
        bar.set_postfix_str(path.name)
        try:
            segment_one(segmenter, path, args.out, output_stem(path, taken))
        except CutTreeError as exc:
            failed.append(path)
            tqdm.write(f"error: {exc}", file=sys.stderr)
    done = len(images) - len(failed)
    print(f"{done} of {len(images)} images segmented into {args.out} "
          f"with the {segmenter.encoder.name} encoder and the {settings.cut_method} method"
          + (f"; {len(failed)} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def segment_one(segmenter: Segmenter, path: Path, out: Path, stem: str) -> None:
    """Segment one image file and write its three outputs."""
    image = load_image(path)
    features = segmenter.encode(image)
    tree = segmenter.cut(image, features)
    labels = frontier_label_image(tree)
    save_label_png(out / f"{stem}_labels.png", labels)
    Image.fromarray(overlay(image, labels, frontier_colors(tree))).save(out / f"{stem}_overlay.png")
    write_coco_instances(out / f"{stem}_coco.json", [(path.name, tree)])
