"""Exports derived from the segment tree's frontier: COCO instances, COCO panoptic, semantic PNG.

Every format is built from the same per-image region label map (`regions.export_image`), and
each writer checks what it wrote by reading it back (`selfcheck`) before publishing it.
"""
from core.errors import CutTreeError


class ExportError(CutTreeError):
    """An export could not be written or failed its self-check; the message says why."""
