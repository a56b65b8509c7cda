"""BSDS evaluation: data reading, ODS/OIS collection, and the evaluate command on real images."""
import argparse
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from core.errors import CutTreeError
from core.evaluate import (ImageScores, bsds_images, evaluate_bsds, load_human_segmentations,
                           summarise)
from core.metrics import region_scores

BSDS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bsds500"
needs_bsds = pytest.mark.skipif(not (BSDS / "groundTruth" / "val").is_dir(),
                                reason=f"BSDS500 val split not found at {BSDS}")


def test_missing_layout_names_the_folder(tmp_path):
    with pytest.raises(CutTreeError, match=r"images.val is not a folder"):
        bsds_images(tmp_path, "val")


def test_images_without_ground_truth_are_reported(tmp_path):
    (tmp_path / "images" / "val").mkdir(parents=True)
    (tmp_path / "groundTruth" / "val").mkdir(parents=True)
    (tmp_path / "images" / "val" / "1.jpg").write_bytes(b"")
    with pytest.raises(CutTreeError, match="no image .* has a ground-truth file"):
        bsds_images(tmp_path, "val")


def test_a_mat_file_without_ground_truth_is_named(tmp_path):
    path = tmp_path / "bad.mat"
    scipy.io.savemat(path, {"something": np.zeros((2, 2))})
    with pytest.raises(CutTreeError, match="bad.mat is not a BSDS ground-truth file"):
        load_human_segmentations(path)
    garbage = tmp_path / "garbage.mat"
    garbage.write_bytes(b"not a mat file at all")
    with pytest.raises(CutTreeError, match="garbage.mat"):
        load_human_segmentations(garbage)


def test_ods_pools_covering_and_ois_takes_the_best_per_image():
    grid = [0.1, 0.2]
    a = ImageScores("a", np.array([8.0, 4.0]), np.array([10.0, 10.0]), np.array([0.9, 0.5]), np.array([1.0, 2.0]))
    b = ImageScores("b", np.array([1.0, 9.0]), np.array([10.0, 10.0]), np.array([0.5, 0.7]), np.array([3.0, 1.0]))
    s = summarise([a, b], grid)
    assert s.covering.ods == pytest.approx(13 / 20) and s.covering.ods_granularity == 0.2
    assert s.covering.ois == pytest.approx(17 / 20)
    assert s.pri.ods == pytest.approx(0.7) and s.pri.ods_granularity == 0.1
    assert s.pri.ois == pytest.approx(0.8)
    assert s.voi.ods == pytest.approx(1.5) and s.voi.ois == pytest.approx(1.0)
    assert s.n_images == 2
    untuned = summarise([a, b], grid, default=0.1)
    assert untuned.covering.untuned == pytest.approx(9 / 20) and untuned.voi.untuned == pytest.approx(2.0)


@needs_bsds
def test_two_real_images_scored_against_all_annotators():
    items = bsds_images(BSDS, "val")[:2]
    humans = {it.name: load_human_segmentations(it.truth) for it in items}

    pending = iter(items)                     # evaluate_bsds segments the items in order

    def hierarchy(image):
        first = humans[next(pending).name][0]
        assert first.shape == image.shape[:2]
        return lambda g: first if g > 0.3 else np.zeros_like(first)

    summary, scores = evaluate_bsds(items, hierarchy, [0.2, 0.4])
    for item, sc in zip(items, scores):
        direct = region_scores(humans[item.name][0], humans[item.name])
        assert sc.pri[1] == pytest.approx(direct.pri) and sc.voi[1] == pytest.approx(direct.voi)
        assert sc.covering[1] == pytest.approx(direct.covering)
        assert sc.covering[1] > sc.covering[0]     # an annotator covers the others better than one segment
    assert summary.n_images == len(items)


@needs_bsds
def test_evaluate_command_runs_end_to_end_on_two_images(capsys):
    pytest.importorskip("core.pipeline")
    from core.cli import evaluate_cmd
    parser = argparse.ArgumentParser()
    evaluate_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["evaluate", "bsds", "--data", str(BSDS), "--limit", "2",
                              "--tau-grid", "0.1,0.5", "--method", "diffcut"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "images: 2" in out and "untuned = at tau 0.5" in out
    covering = float(next(line for line in out.splitlines() if line.startswith("covering")).split()[2])
    assert 0.0 < covering <= 1.0


def test_evaluate_command_rejects_a_bad_grid(capsys, tmp_path):
    from core.cli import evaluate_cmd
    parser = argparse.ArgumentParser()
    evaluate_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["evaluate", "bsds", "--data", str(tmp_path), "--tau-grid", "0.1,x"])
    assert args.handler(args) == 1
    assert "--tau-grid '0.1,x'" in capsys.readouterr().err
