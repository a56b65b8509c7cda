"""CamVid oracle evaluation: per-frame cuts over the granularities, the oracle curve, the command."""
import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.camvid import CLASSES, VOID, camvid_frames
from core.evaluate import FrameCuts, camvid_cuts, format_oracle, oracle_curve

CAMVID = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"
needs_camvid = pytest.mark.skipif(not (CAMVID / "valannot").is_dir(),
                                  reason=f"CamVid val split not found at {CAMVID}")


def two_class_truth() -> np.ndarray:
    truth = np.full((20, 30), 3, np.uint8)       # road
    truth[:8] = 0                                 # sky
    truth[8:10, :5] = VOID
    return truth


def test_the_oracle_curve_scores_each_granularity_and_counts_regions():
    truth = two_class_truth()
    one = np.zeros(truth.shape, np.int32)
    exact = (truth == 3).astype(np.int32)
    split = exact * 2 + (np.arange(30)[None, :] >= 15)   # four regions, each still pure
    frames = [FrameCuts("a", truth, [one, exact, split]), FrameCuts("b", truth, [one, exact, one])]
    curve = oracle_curve(frames, [0.1, 0.5, 0.8])
    assert curve.n_frames == 2
    assert np.allclose(curve.regions_per_frame, [1, 2, 2.5])
    assert curve.scores[1].miou == pytest.approx(1.0)
    assert curve.scores[0].miou < 0.5                   # one region: road everywhere
    assert np.isnan(curve.scores[1].iou[CLASSES.index("pole")])
    assert curve.best_within(2) == 1 and curve.best_within(0.5) == -1
    text = format_oracle(curve, default=0.5, max_regions=2)
    assert "<- default" in text and "pole" in text and "frames: 2" in text


def test_cuts_are_made_once_per_frame_at_the_label_size(tmp_path):
    root = tmp_path / "camvid"
    (root / "val").mkdir(parents=True)
    (root / "valannot").mkdir()
    truth = two_class_truth()
    for name in ("f1.png", "f2.png"):
        Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(root / "val" / name)
        Image.fromarray(truth).save(root / "valannot" / name)
    calls = []

    def hierarchy(image):
        calls.append(image.shape)

        def labels_at(g):
            return np.full((10, 15), int(g * 10), np.int32)      # half size: resized up
        return labels_at
    cuts = list(camvid_cuts(camvid_frames(root), hierarchy, [0.1, 0.3]))
    assert calls == [(20, 30, 3)] * 2
    assert [c.name for c in cuts] == ["f1", "f2"]
    assert all(c.cuts[1].shape == (20, 30) and (c.cuts[1] == 3).all() for c in cuts)


def run_evaluate(argv):
    from core.cli import evaluate_cmd
    parser = argparse.ArgumentParser()
    evaluate_cmd.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.handler(args)


@needs_camvid
def test_the_oracle_command_prints_the_curve_and_the_classes(capsys):
    assert run_evaluate(["evaluate", "camvid", "--oracle", "--data", str(CAMVID), "--limit", "2",
                         "--tau-grid", "0.3,0.5", "--tokens", "16"]) == 0
    out = capsys.readouterr().out
    assert "oracle mIoU" in out and "<- default" in out and "frames: 2" in out
    for name in ("pole", "sign/symbol", "pedestrian", "bicyclist"):
        assert name in out
    miou = float(next(line for line in out.splitlines() if line.startswith("mIoU")).split()[1])
    assert 0.0 < miou <= 1.0


def test_the_oracle_needs_a_camvid_folder_with_frames(capsys, tmp_path):
    assert run_evaluate(["evaluate", "camvid", "--data", str(tmp_path), "--oracle"]) == 1
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "val").mkdir()
    (tmp_path / "valannot").mkdir()
    assert run_evaluate(["evaluate", "camvid", "--data", str(tmp_path), "--oracle"]) == 1
    assert "no frame in" in capsys.readouterr().err
