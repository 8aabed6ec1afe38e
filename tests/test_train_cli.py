"""`python train.py` on a fresh clone: no dataset configured -> synthetic text; checkpoints, TensorBoard
events (losses, lr, map images), inference exports and loss-curve figures come out of one tiny run."""
import json
import subprocess
import sys

import cv2
import h5py
import numpy as np
import pytest
from test_train_support import REPO_ROOT, subprocess_env

from db_tf.tools.plot_curves import main as plot_curves_main
from db_tf.training.summaries import read_events

pytestmark = pytest.mark.slow   # not in the fast subset (python -m pytest -m "not slow")

LOSS_TAGS = ("binarize_loss", "thresh_loss", "thresh_binary_loss", "total_loss")


def h5_arrays(path, skip=("optimizer",)):
    out = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: out.__setitem__(name, item[()])
                          if isinstance(item, h5py.Dataset) and name.split("/")[0] not in skip else None)
    return out


@pytest.fixture(scope="module")
def fresh_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    command = [sys.executable, "train.py", "--set", "TRAIN.EPOCHS=1", "TRAIN.STEPS_PER_EPOCH=2",
               "TRAIN.BATCH_SIZE=2", "DATA.IMAGE_SIZE=128", f"TRAIN.RUN_DIR={run_dir}", "TRAIN.LOG_EVERY=1",
               "TRAIN.IMAGE_EVERY=2"]
    result = subprocess.run(command, cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return run_dir, result.stdout


def test_fresh_clone_command_trains_on_synthetic_text(fresh_run):
    run_dir, out = fresh_run
    assert "synthetic text (DATA.TRAIN is empty)" in out
    assert "training finished at step 2" in out
    state = json.loads((run_dir / "checkpoints" / "ckpt-00000002" / "state.json").read_text())
    assert (state["step"], state["epoch"], state["optimizer_iterations"], state["samples_seen"]) == (2, 1, 2, 4)


def test_events_hold_losses_lr_and_map_images(fresh_run):
    run_dir, _ = fresh_run
    scalars, images = read_events(run_dir / "logs")
    for tag in LOSS_TAGS:
        assert [step for step, _ in scalars[tag]] == [1, 2] and all(np.isfinite(v) for _, v in scalars[tag])
    # lr logged after step s is the poly schedule at s (total 2 steps, clamped to (1 - 1/2) at the end).
    assert [v for _, v in scalars["lr"]] == pytest.approx([0.007 * 0.5 ** 0.9] * 2, rel=1e-6)
    for tag in ("input", "probability", "threshold", "binary"):
        assert images[tag] == [(2, 2)], tag          # every IMAGE_EVERY=2 steps, 2 images each


def test_exports_are_the_trained_weights_in_the_pretrained_schema(fresh_run):
    run_dir, out = fresh_run
    meta = json.loads((run_dir / "final.json").read_text())
    assert meta["model"]["backbone"] == "resnet18" and meta["preprocess"]["channel_order"] == "RGB"
    assert set(meta) >= {"name", "model", "preprocess", "postprocess", "source", "license"}
    exported = h5_arrays(run_dir / "final.weights.h5")
    checkpoint = h5_arrays(run_dir / "checkpoints" / "ckpt-00000002" / "model.weights.h5")
    assert exported.keys() == checkpoint.keys() and len(exported) > 100
    for name, value in exported.items():
        np.testing.assert_array_equal(value, checkpoint[name], err_msg=name)
    from db_tf.presets import load_preset  # the inference side reads it
    model, loaded_meta = load_preset(run_dir / "final.json")
    assert loaded_meta["name"] == "final" and model.backbone_name == "resnet18"


def test_plot_curves_writes_loss_figures(fresh_run, tmp_path, capsys):
    run_dir, _ = fresh_run
    assert plot_curves_main([str(run_dir), "--out", str(tmp_path)]) == 0
    written = capsys.readouterr().out.split()
    assert {p.rsplit("/", 1)[-1] for p in written} == {"run_losses.png", "run_lr.png"}
    for path in written:
        image = cv2.imread(path)
        assert image is not None and image.shape[0] > 200 and image.shape[1] > 300
    assert plot_curves_main([str(tmp_path / "nothing-here")]) == 2


def _write_validation_events(log_dir, hmeans):
    import tensorflow as tf

    from db_tf.training import summaries

    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for step, value in hmeans:
            summaries.scalar("val_hmean", value, step)
        summaries.scalar("total_loss", 1.0, 1)
    writer.close()


def test_plot_curves_compares_the_validation_of_several_runs(tmp_path, capsys):
    from db_tf.tools.plot_curves import plot_comparison

    runs = {"stage_a": [(112, 0.75), (224, 0.78)], "stage_b": [(112, 0.79), (224, 0.77), (336, 0.8)]}
    for name, hmeans in runs.items():
        _write_validation_events(tmp_path / name / "logs", hmeans)
    path, series = plot_comparison([tmp_path / name for name in runs], tmp_path / "out" / "cmp.png")
    assert series.keys() == runs.keys()
    for name, hmeans in runs.items():
        assert [step for step, _ in series[name]] == [step for step, _ in hmeans]
        assert [value for _, value in series[name]] == pytest.approx([value for _, value in hmeans])
    assert cv2.imread(str(path)).shape[:2] == (440, 770)      # 7 x 4 inches at 110 dpi
    argv = [str(tmp_path / "stage_a"), str(tmp_path / "stage_b"), "--out", str(tmp_path), "--compare", "stages"]
    assert plot_curves_main(argv) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "stages.png")]
    _write_validation_events(tmp_path / "unvalidated" / "logs", [])
    assert plot_curves_main([str(tmp_path / "stage_a"), str(tmp_path / "unvalidated"), "--compare", "x"]) == 2
    assert "no val_hmean" in capsys.readouterr().err
