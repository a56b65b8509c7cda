"""Image -> SegmentTree for the worker thread, with the encoder kept warm across images.

Uses `core.pipeline.Segmenter` (encoder loaded once, features cached per image so that a
change of cut settings re-cuts without a new encoder pass).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from core.jobs import CancelToken, Progress
from core.settings import Settings, encoder_key
from core.tree import Cutter, SegmentTree

FEATURE_CACHE = 4


@dataclass
class Segmented:
    """What the worker hands back: the tree and a cutter for splitting leaves further."""

    tree: SegmentTree
    cutter: Optional[Cutter]


SegmentFn = Callable[[str, np.ndarray, Settings, Progress, CancelToken], Segmented]


class WarmSegmenter:
    """Keeps one pipeline Segmenter (its encoder) and the last images' features."""

    def __init__(self) -> None:
        self._segmenter: Any = None
        self._encoder_key: Optional[tuple] = None
        self._features: OrderedDict[str, Any] = OrderedDict()

    def __call__(self, key: str, image: np.ndarray, settings: Settings, progress: Progress,
                 cancel: CancelToken) -> Segmented:
        features = self._features_of(key, image, settings, progress, cancel)
        tree = self._segmenter.cut(image, features, progress, cancel)
        return Segmented(tree, self._segmenter.cutter(image, features, tree.shape))

    def prepare_cutter(self, key: str, image: np.ndarray, settings: Settings, shape: tuple[int, int],
                       progress: Progress, cancel: CancelToken) -> Optional[Cutter]:
        """A cutter for a tree of `shape` (one reopened, or whose cutter was let go) without
        cutting the image again: only the features are needed, and they are often cached."""
        features = self._features_of(key, image, settings, progress, cancel)
        return self._segmenter.cutter(image, features, shape)

    def _features_of(self, key: str, image: np.ndarray, settings: Settings, progress: Progress,
                     cancel: CancelToken) -> Any:
        from core.pipeline import Segmenter   # imported lazily: loading it pulls in torch
        key_now = encoder_key(settings)
        if self._segmenter is None or key_now != self._encoder_key:
            self._segmenter, self._encoder_key = Segmenter(settings), key_now
            self._features.clear()
        else:
            self._segmenter.settings = settings
        features = self._features.get(key)
        if features is None:
            features = self._segmenter.encode(image, progress, cancel)
            self._features[key] = features
            while len(self._features) > FEATURE_CACHE:
                self._features.popitem(last=False)
        self._features.move_to_end(key)
        return features
