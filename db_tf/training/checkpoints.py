"""Training checkpoints: written atomically, last K kept plus the best, resumable after a kill.

Layout of RUN_DIR/checkpoints/:
    ckpt-00001234/          step 1234 = training batches consumed so far
        model.weights.h5    model weights AND optimizer state (Keras writes the optimizer's variables --
                            iterations, momentum buffers, loss scale -- into the same file once compiled)
        state.json          step, epoch, data position, lr, best hmean, sha256 of model.weights.h5
    best-00001000/          the checkpoint with the best validation hmean so far (same layout)
    .tmp-.../               a checkpoint being written; renamed into place only when complete

Why a directory per checkpoint: a rename of a complete directory is atomic on POSIX, so a SIGKILL leaves
either a complete checkpoint or a `.tmp-` directory that is ignored (and removed at the next start).
On restore, a checkpoint whose state.json is unreadable, whose weights fail their checksum or fail to load is
skipped with a log line and the previous one is used. A model or optimizer holding NaN/Inf is never saved.

Exports for inference (`export_pretrained`) are plain `<name>.weights.h5` files WITHOUT optimizer state plus
`<name>.json` in the pretrained-weights schema of the brief, so TextDetector / export.py can load a run.
"""
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

WEIGHTS_FILE = "model.weights.h5"
STATE_FILE = "state.json"
TMP_PREFIX = ".tmp-"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the directory and the reason."""


class NonFiniteError(ValueError):
    """The model holds NaN/Inf: it is not written (the message names some of the variables)."""


def nonfinite_variables(model, include_optimizer=True):
    """Paths of the model's (and its optimizer's) variables that hold NaN or Inf."""
    variables = list(model.weights)
    if include_optimizer and getattr(model, "optimizer", None) is not None:
        variables += list(model.optimizer.variables)
    bad = []
    for variable in variables:
        value = getattr(variable, "value", variable)  # the backend variable behind a keras.Variable
        value = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            bad.append(getattr(variable, "path", getattr(variable, "name", "?")))
    return bad


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path, data):
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=2, sort_keys=True)
        stream.flush()
        os.fsync(stream.fileno())


def _publish(tmp_dir, final_dir):
    """Atomically move a completely written directory into place."""
    for child in tmp_dir.iterdir():
        _fsync_path(child)
    os.replace(tmp_dir, final_dir)  # atomic; fails if final_dir is a non-empty directory
    _fsync_path(final_dir.parent)


def _step_of(path):
    return int(path.name.split("-")[-1])


class CheckpointManager:
    """Saves and restores training checkpoints in `directory` (see the module docstring for the layout).

    write=False (non-chief workers of a multi-worker run) still goes through the motions in a private
    temporary directory -- every worker must read its variables at the same points -- and then deletes it.
    """

    def __init__(self, directory, keep=3, write=True, log=print):
        self.directory = Path(directory)
        self.keep = max(1, int(keep))
        self.write = write
        self.log = log
        if write:
            self.directory.mkdir(parents=True, exist_ok=True)
            for stale in self.directory.glob(TMP_PREFIX + "*"):  # left by a killed run
                shutil.rmtree(stale, ignore_errors=True)

    # ------------------------------------------------------------------ saving
    def save(self, model, state, kind="ckpt"):
        """Write a checkpoint of `model` (+ optimizer) with `state` (a JSON-able dict with "step").

        Returns the checkpoint directory, or None for a non-chief worker (nothing written). Raises
        NonFiniteError, writing nothing, when the model or optimizer holds NaN/Inf.
        """
        bad = nonfinite_variables(model)
        if bad:
            raise NonFiniteError(f"NOT saving checkpoint at step {state['step']}: {len(bad)} variable(s) hold "
                                 f"NaN/Inf, e.g. {', '.join(bad[:3])}")
        name = f"{kind}-{int(state['step']):08d}"
        parent = self.directory if self.write else Path(tempfile.mkdtemp(prefix="db_tf_worker_ckpt_"))
        tmp_dir = parent / f"{TMP_PREFIX}{name}-{os.getpid()}"
        tmp_dir.mkdir(parents=True)
        model.save_weights(str(tmp_dir / WEIGHTS_FILE))
        state = dict(state, sha256=_sha256(tmp_dir / WEIGHTS_FILE), saved_at=time.time())
        _write_json(tmp_dir / STATE_FILE, state)
        if not self.write:
            shutil.rmtree(parent, ignore_errors=True)
            return None
        final_dir = self.directory / name
        if final_dir.exists():  # the same step saved twice (e.g. epoch end right after a periodic save)
            shutil.rmtree(final_dir)
        _publish(tmp_dir, final_dir)
        self._prune(kind, keep=self.keep if kind == "ckpt" else 1)
        return final_dir

    def save_best(self, model, state):
        """Save as the new best checkpoint (state must hold "hmean"); the previous best is removed after."""
        return self.save(model, state, kind="best")

    def _prune(self, kind, keep):
        for old in self.list(kind)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)

    # ------------------------------------------------------------------ reading
    def list(self, kind="ckpt"):
        """Complete checkpoint directories of this kind, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [p for p in self.directory.glob(f"{kind}-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
        return sorted(found, key=_step_of)

    @staticmethod
    def read_state(checkpoint_dir):
        """state.json of a checkpoint, verified against its weights file; raises CheckpointError."""
        checkpoint_dir = Path(checkpoint_dir)
        state_path, weights_path = checkpoint_dir / STATE_FILE, checkpoint_dir / WEIGHTS_FILE
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{checkpoint_dir}: unreadable {STATE_FILE} ({exc})") from None
        if not isinstance(state, dict) or "step" not in state:
            raise CheckpointError(f"{checkpoint_dir}: {STATE_FILE} has no 'step'")
        if not weights_path.is_file():
            raise CheckpointError(f"{checkpoint_dir}: {WEIGHTS_FILE} is missing")
        if state.get("sha256") and _sha256(weights_path) != state["sha256"]:
            raise CheckpointError(f"{checkpoint_dir}: {WEIGHTS_FILE} does not match its checksum (truncated?)")
        return state

    def latest_state(self, kind="ckpt"):
        """(directory, state) of the newest checkpoint whose files verify, or (None, None)."""
        for checkpoint_dir in reversed(self.list(kind)):
            try:
                return checkpoint_dir, self.read_state(checkpoint_dir)
            except CheckpointError as exc:
                self.log(f"skipping checkpoint: {exc}; falling back to the previous one")
        return None, None

    def restore(self, model, checkpoint_dir=None):
        """Load the newest usable checkpoint (or `checkpoint_dir`) into model + optimizer; returns
        (directory, state), or (None, None) when there is none.

        The optimizer must already be built (model.optimizer.build(model.trainable_variables)), otherwise
        Keras would silently skip its state.
        """
        candidates = [Path(checkpoint_dir)] if checkpoint_dir else list(reversed(self.list("ckpt")))
        for candidate in candidates:
            try:
                state = self.read_state(candidate)
                load_checkpoint_weights(model, candidate / WEIGHTS_FILE)
                iterations = state.get("optimizer_iterations")
                if iterations is not None and int(model.optimizer.iterations.numpy()) != int(iterations):
                    raise CheckpointError(f"{candidate}: optimizer state was not restored "
                                          f"(iterations {int(model.optimizer.iterations.numpy())} != {iterations})")
                return candidate, state
            except (CheckpointError, OSError, ValueError) as exc:
                if checkpoint_dir:
                    raise CheckpointError(f"cannot resume from {candidate}: {exc}") from exc
                self.log(f"skipping checkpoint {candidate.name}: {exc}; falling back to the previous one")
        return None, None


def load_checkpoint_weights(model, weights_path):
    """model.load_weights that turns h5/Keras failures into CheckpointError naming the file."""
    try:
        with h5py.File(weights_path, "r") as handle:
            if getattr(model, "optimizer", None) is not None and "optimizer" not in handle:
                raise CheckpointError(f"{weights_path}: holds no optimizer state")
        model.load_weights(str(weights_path))
    except CheckpointError:
        raise
    except Exception as exc:  # h5py/Keras raise many types for damaged files
        raise CheckpointError(f"{weights_path}: cannot load ({type(exc).__name__}: {exc})") from exc


# ---------------------------------------------------------------------- exports for inference
def write_weights_without_optimizer(model, path):
    """Save only the model's weights (no optimizer group) to `path` (.weights.h5), atomically.
    Raises NonFiniteError (nothing written) when a weight holds NaN/Inf."""
    path = Path(path)
    bad = nonfinite_variables(model, include_optimizer=False)
    if bad:
        raise NonFiniteError(f"NOT writing {path}: {len(bad)} weight(s) hold NaN/Inf, e.g. {', '.join(bad[:3])}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=TMP_PREFIX) as tmp:
        full = Path(tmp) / "full.weights.h5"
        model.save_weights(str(full))
        slim = Path(tmp) / "slim.weights.h5"
        with h5py.File(full, "r") as source, h5py.File(slim, "w") as target:
            for key, value in source.attrs.items():
                target.attrs[key] = value
            for key in source:
                if key != "optimizer":
                    source.copy(source[key], target, name=key)
        _fsync_path(slim)
        os.replace(slim, path)


def export_pretrained(model, directory, name, model_kwargs, preprocess, postprocess, source, license):
    """Write `<directory>/<name>.weights.h5` + `<name>.json` in the brief's pretrained-weights schema."""
    directory = Path(directory)
    write_weights_without_optimizer(model, directory / f"{name}.weights.h5")
    meta = {"name": name, "model": model_kwargs, "preprocess": preprocess, "postprocess": postprocess,
            "source": source, "license": license}
    tmp = directory / f"{TMP_PREFIX}{name}.json"
    _write_json(tmp, meta)
    os.replace(tmp, directory / f"{name}.json")
    return directory / f"{name}.json"
