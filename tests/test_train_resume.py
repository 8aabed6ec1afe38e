"""Resume after SIGKILL: a damaged latest checkpoint is skipped with a log line, the run restarts at the
previous checkpoint's step with the same LR and data position, and recomputes exactly what the killed run had
computed (same weights, BN statistics and momentum buffers)."""
import re
import shutil
import signal
import time

import h5py
import numpy as np
import pytest
from test_train_support import TINY_OVERRIDES, start, write_tiny_train_script

from db_tf.training.checkpoints import CheckpointManager

EPOCHS, STEPS_PER_EPOCH, EVERY = 2, 1000, 3


def overrides(run_dir):
    # Eager steps: no tracing, which is most of a tiny run's cost (the traced step is covered elsewhere).
    return ["--run-eagerly", "--set", *TINY_OVERRIDES, f"TRAIN.RUN_DIR={run_dir}", f"TRAIN.EPOCHS={EPOCHS}",
            f"TRAIN.STEPS_PER_EPOCH={STEPS_PER_EPOCH}", f"TRAIN.CHECKPOINT_EVERY={EVERY}", "TRAIN.KEEP_CHECKPOINTS=50",
            "TRAIN.EMA=0.9"]   # the weight averages are optimizer variables: the resume must recompute them too


def poly_lr(step):
    return 0.007 * (1 - step / (EPOCHS * STEPS_PER_EPOCH)) ** 0.9


def h5_arrays(path):
    out = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: out.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset)
                          else None)
    return out


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_recomputes_the_same_steps(tmp_path):
    script = write_tiny_train_script(tmp_path)
    run_dir = tmp_path / "run"
    killed_log, resumed_log = tmp_path / "killed.log", tmp_path / "resumed.log"
    victim = start([script, *overrides(run_dir)], killed_log)
    manager = CheckpointManager(run_dir / "checkpoints", write=False, log=lambda _: None)
    deadline = time.time() + 200
    while len(manager.list()) < 2 and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    checkpoints = manager.list()
    assert len(checkpoints) >= 2, f"fewer than 2 checkpoints before the kill:\n{killed_log.read_text()[-3000:]}"

    # The killed run's last checkpoint is the reference; then it is damaged as by a half-finished write.
    latest = checkpoints[-1]
    last_step = int(latest.name.split("-")[1])
    assert last_step % STEPS_PER_EPOCH != 0, "the kill must happen mid-epoch"
    reference = h5_arrays(latest / "model.weights.h5")
    with open(latest / "model.weights.h5", "r+b") as stream:
        stream.truncate(stream.seek(0, 2) // 2)
    previous_dir = checkpoints[-2]
    previous = CheckpointManager.read_state(previous_dir)
    step = previous["step"]
    assert step == last_step - EVERY and previous["lr"] == pytest.approx(poly_lr(step), rel=1e-6)

    resumed = start([script, *overrides(run_dir), "--max-steps", EVERY], resumed_log)
    try:
        code = resumed.wait(timeout=200)
    finally:
        resumed.kill()
    text = resumed_log.read_text()
    assert code == 0, text[-3000:]

    assert re.search(rf"skipping checkpoint {latest.name}: .*checksum.*falling back", text), text[-3000:]
    match = re.search(r"resumed from (\S+): step (\d+) .*optimizer iterations (\d+), lr ([0-9.e-]+)", text)
    assert match, text[-3000:]
    assert match.group(1) == str(previous_dir) and int(match.group(2)) == step == int(match.group(3))
    assert float(match.group(4)) == pytest.approx(previous["lr"], rel=1e-7)
    assert f"finishing epoch 1: batches {step + 1}..{STEPS_PER_EPOCH}" in text

    final = CheckpointManager.read_state(latest)  # rewritten by the resumed run, checksum valid again
    assert final["step"] == final["optimizer_iterations"] == last_step
    assert final["lr"] == pytest.approx(poly_lr(last_step), rel=1e-6)
    recomputed = h5_arrays(latest / "model.weights.h5")
    start_values = h5_arrays(previous_dir / "model.weights.h5")
    assert recomputed.keys() == reference.keys()
    moved = 0
    for name, value in reference.items():
        np.testing.assert_allclose(recomputed[name], value, rtol=1e-4, atol=1e-6, err_msg=name)
        moved += not np.array_equal(start_values[name], value)
    assert moved > len(reference) // 2, "the recomputed steps changed (almost) nothing"
    shutil.rmtree(run_dir, ignore_errors=True)
