"""Small COCO datasets written in tests and benches: images on disk plus an instances JSON."""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def write_instances(folder: Path, n_images: int, size: tuple[int, int] = (48, 64), per_image: int = 3,
                    first_image_id: int = 142238, first_ann_id: int = 9001, name: str = "coco.json") -> Path:
    """`n_images` PNGs in `folder/images/` with `per_image` (<= 3) disjoint rectangles each, ids far from 1."""
    height, width = size
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    rng = np.random.default_rng(n_images)
    for i in range(n_images):
        file_name = f"img{i:03d}.png"
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(folder / "images" / file_name)
        image_id = first_image_id + 7 * i
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for k in range(per_image):
            x0, y0 = 2 + 20 * k, 3 + 5 * k            # disjoint, so a round trip is exact
            x1, y1 = min(width, x0 + 14), min(height, y0 + 12)
            annotations.append({"id": first_ann_id + len(annotations) * 3, "image_id": image_id,
                                "category_id": 3 + k % 2, "iscrowd": 0, "area": 1.0, "bbox": [0, 0, 1, 1],
                                "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]]})
    path = folder / name
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 3, "name": "cat"}, {"id": 4, "name": "dog"}]}))
    return path


def png_with_header(path: Path, width: int, height: int) -> None:
    """A PNG whose IHDR claims `width` x `height` (1-bit grey) with almost no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
