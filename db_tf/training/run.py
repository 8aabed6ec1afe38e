"""One training run: config -> model, optimizer, data, callbacks -> `model.fit` -> checkpoints and exports.

`train.py` is the command line around `train()`. What happens, in order:

1. the distribution strategy is created first (MultiWorkerMirroredStrategy must exist before any TF op);
2. the run directory is read: a usable checkpoint there means RESUME (weights, optimizer state, step, epoch
   and data position; checkpoints that all fail to load are an error, never a silent fresh start), otherwise a
   fresh start; RUN_DIR/run.json fixes a run's architecture and
   preprocessing at its first start, so a resumed run rebuilds the same model whatever the current config;
3. the model: cfg.MODEL.NAME (a shipped preset) or `--init X.json` / `--init NAME` builds the preset's
   architecture and starts from its weights, and the preset's preprocessing (channel order, mean, std)
   REPLACES cfg.DATA's for training, validation and the exports (logged); otherwise build_model(cfg.MODEL),
   optionally with `--init X.weights.h5` (matching arrays loaded, the rest reported);
4. `model.fit` with the model's own train_step, the Keras progress bar and our callbacks. A run resumed in
   the middle of an epoch needs two fit calls (the rest of that epoch, then the following epochs): fit
   cannot start an epoch part-way, and each call builds its dataset at the right data position;
5. at the end: a checkpoint, and `final.weights.h5` + `final.json` (and `best.*` whenever validation
   improved) in the pretrained schema, so inference.py / export.py can use the run directly.
"""
import copy
import json
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from db_tf.data.augment import CROP_MODES
from db_tf.data.pipeline import build_dataset
from db_tf.data.pipeline import steps_per_epoch as pipeline_steps_per_epoch
from db_tf.training import strategy as dist
from db_tf.training.callbacks import (
    CheckpointSaver,
    NonFiniteGuard,
    RunState,
    StepCounter,
    StopControl,
    TensorBoardLogger,
    Validator,
)
from db_tf.training.checkpoints import CheckpointManager, NonFiniteError, export_pretrained
from db_tf.training.init_weights import format_report, load_matching_weights
from db_tf.training.optim import OPTIMIZERS, averaged_weights, build_optimizer, current_lr
from db_tf.training.optim import describe as describe_optimizer

RUN_FILE = "run.json"
MIXED_PRECISION = ("", "mixed_float16", "mixed_bfloat16")
MODEL_KWARG_KEYS = ("backbone", "neck", "inner_channels", "head_channels", "k", "head_batch_norm")


class TrainingError(RuntimeError):
    """A run that cannot start or had to stop; the message says why and what to do."""


@dataclass
class RunResult:
    run_dir: Path
    start_step: int
    step: int
    completed: bool
    stop_reason: str
    failed: bool
    best_hmean: float


def log(message):
    print(f"[train] {message}", flush=True)


# ---------------------------------------------------------------------------------------------- model
def model_kwargs_from_config(model_cfg):
    return {"backbone": model_cfg.BACKBONE, "neck": model_cfg.NECK, "inner_channels": int(model_cfg.INNER_CHANNELS),
            "head_channels": None, "k": float(model_cfg.K), "head_batch_norm": True}


def config_preprocess(data_cfg):
    return {"channel_order": data_cfg.CHANNEL_ORDER, "mean": list(data_cfg.MEAN), "std": list(data_cfg.STD)}


def preset_of(cfg, init):
    """The shipped preset a fresh run starts from (cfg.MODEL.NAME, or --init NAME / X.json), or ""."""
    return cfg.MODEL.NAME or (init if init and not str(init).endswith(".weights.h5") else "")


def plan_model(cfg, init):
    """Decide architecture, preprocessing and initial weights for a FRESH run.

    Returns (model_kwargs, preprocess, init_weights_path or None, description).
    """
    preset = preset_of(cfg, init)
    if cfg.MODEL.NAME and init and not str(init).endswith(".weights.h5") and init != cfg.MODEL.NAME:
        raise TrainingError(f"MODEL.NAME={cfg.MODEL.NAME!r} and --init {init} name two different starting models; "
                            f"give one of them (a .weights.h5 with --init replaces the preset's weights)")
    if preset:
        from db_tf import presets

        try:
            files = presets.resolve(preset)
            meta = presets.read_metadata(preset)
        except presets.PresetError as exc:
            raise TrainingError(str(exc)) from None
        kwargs = {key: meta["model"][key] for key in meta["model"] if key != "backbone_weights"}
        preprocess = {key: meta["preprocess"][key] for key in ("channel_order", "mean", "std")}
        why = f"MODEL.NAME={cfg.MODEL.NAME!r}" if cfg.MODEL.NAME else f"--init {init}"
        # A .weights.h5 given with --init (e.g. an earlier fine-tuning of this preset) replaces the preset's.
        weights = init if init and str(init).endswith(".weights.h5") else files.weights
        return kwargs, preprocess, weights, f"preset {meta['name']} ({why}, {files.config})"
    kwargs = model_kwargs_from_config(cfg.MODEL)
    init_path = init or cfg.MODEL.WEIGHTS or None
    return kwargs, config_preprocess(cfg.DATA), init_path, "built from cfg.MODEL"


def build_dbnet(kwargs, backbone_weights=None):
    from db_tf.models import DBNet

    return DBNet(**kwargs, backbone_weights=backbone_weights)


def export_kwargs(model_kwargs):
    return {key: model_kwargs[key] for key in MODEL_KWARG_KEYS if key in model_kwargs}


# ---------------------------------------------------------------------------------------------- data
def train_dataset(cfg, start_step, input_context=None):
    """The training batches of global steps start_step, start_step + 1, ... (exactly those an
    uninterrupted run would see: the pipeline is a pure function of the data position)."""
    return build_dataset(cfg, "train", input_context=input_context, start_step=start_step)


def make_denormalize(preprocess):
    mean = np.asarray(preprocess["mean"], np.float32)
    std = np.asarray(preprocess["std"], np.float32)
    bgr = str(preprocess["channel_order"]).upper() == "BGR"

    def denormalize(images):
        rgb = np.clip(images * std + mean, 0.0, 1.0)
        return rgb[..., ::-1] if bgr else rgb

    return denormalize


def make_evaluator(cfg, preprocess):
    """evaluate(model) -> P/R/hmean on cfg.DATA.VAL with TextDetector and the ICDAR 2015 protocol."""
    from db_tf import metrics
    from db_tf.data.image_io import ImageReadError, read_image
    from db_tf.data.pipeline import evaluation_samples
    from db_tf.detector import TextDetector, settings_from_config

    samples = evaluation_samples(cfg)  # file datasets of DATA.VAL (synthetic ones have no files to detect on)
    if not samples:
        return None, 0
    settings = {**settings_from_config(cfg), **preprocess}   # the run's preprocessing (e.g. a preset's BGR)
    detectors = {}

    def evaluate(model):
        if id(model) not in detectors:  # one TextDetector per model: its forward pass is traced once
            detectors[id(model)] = TextDetector(model=model, **settings)
        detector = detectors[id(model)]
        results = []
        for start in range(0, len(samples), 8):
            chunk, images = [], []
            for sample in samples[start:start + 8]:
                try:
                    images.append(read_image(sample.image_path))
                    chunk.append(sample)
                except ImageReadError as exc:   # scored as found nothing: a bad image must not stop the run
                    log(f"validation: {exc}; its texts count as missed")
                    results.append(metrics.evaluate_image(sample.polygons, sample.ignore, []))
            for sample, found in zip(chunk, detector.detect(images) if images else []):
                results.append(metrics.evaluate_image(sample.polygons, sample.ignore, found.polygons))
        return metrics.combine(results)

    return evaluate, len(samples)


# ---------------------------------------------------------------------------------------------- run file
def read_run_file(run_dir):
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise TrainingError(f"{path}: unreadable ({exc}); delete it only if you mean to start the run over") from None


def write_run_file(run_dir, data):
    path = Path(run_dir) / RUN_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _config_differences(old, new, prefix=""):
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


# ---------------------------------------------------------------------------------------------- train
def check_config(cfg):
    train = cfg.TRAIN
    problems = []
    if train.EPOCHS < 1:
        problems.append(f"TRAIN.EPOCHS must be >= 1, got {train.EPOCHS}")
    if train.BATCH_SIZE < 1:
        problems.append(f"TRAIN.BATCH_SIZE must be >= 1, got {train.BATCH_SIZE}")
    if train.STEPS_PER_EPOCH < 0:
        problems.append(f"TRAIN.STEPS_PER_EPOCH must be >= 0, got {train.STEPS_PER_EPOCH}")
    for key in ("VAL_EVERY", "KEEP_CHECKPOINTS"):
        if train[key] < 1:
            problems.append(f"TRAIN.{key} must be >= 1, got {train[key]}")
    if train.CHECKPOINT_EVERY < 0:
        problems.append(f"TRAIN.CHECKPOINT_EVERY must be >= 0 (0 = only at epoch ends), got {train.CHECKPOINT_EVERY}")
    if train.MIXED_PRECISION not in MIXED_PRECISION:
        problems.append(f"TRAIN.MIXED_PRECISION must be one of {MIXED_PRECISION}, got {train.MIXED_PRECISION!r}")
    if not 0.0 <= float(train.get("EMA", 0.0)) < 1.0:
        problems.append(f"TRAIN.EMA must be in [0, 1) (0 = off), got {train.EMA}")
    if str(train.OPTIMIZER).lower() not in OPTIMIZERS:
        problems.append(f"TRAIN.OPTIMIZER must be one of {OPTIMIZERS}, got {train.OPTIMIZER!r}")
    from db_tf.models import DBNet

    unknown_parts = sorted({part for part in train.get("FREEZE", [])
                            if part.partition("/")[0] not in DBNet.FREEZABLE_PARTS})
    if unknown_parts:
        problems.append(f"TRAIN.FREEZE: cannot freeze {unknown_parts}; the parts are {DBNet.FREEZABLE_PARTS} "
                        f"or '<part>/<layer name prefix>'")
    if train.get("FREEZE_BN_EXCEPT") and not train.get("FREEZE_BN", False):
        problems.append("TRAIN.FREEZE_BN_EXCEPT only applies with TRAIN.FREEZE_BN=True")
    crop_mode = cfg.DATA.get("AUG", {}).get("CROP_MODE", "resize")
    if crop_mode not in CROP_MODES:   # else every sample would fail in augment and be skipped
        problems.append(f"DATA.AUG.CROP_MODE must be one of {CROP_MODES}, got {crop_mode!r}")
    distill = cfg.TRAIN.get("DISTILL", {})
    if distill.get("TEACHER"):
        from db_tf.losses import DISTILL_LOSSES

        if distill.get("LOSS", "bce") not in DISTILL_LOSSES:
            problems.append(f"TRAIN.DISTILL.LOSS must be one of {DISTILL_LOSSES}, got {distill.LOSS!r}")
        if float(distill.get("WEIGHT", 0.0)) < 0 or float(distill.get("THRESH_WEIGHT", 0.0)) < 0:
            problems.append("TRAIN.DISTILL.WEIGHT and THRESH_WEIGHT must be >= 0")
        if not 0.0 <= float(distill.get("HARD_FRACTION", 0.0)) <= 1.0:
            problems.append(f"TRAIN.DISTILL.HARD_FRACTION must be in [0, 1] (0 = every pixel), "
                            f"got {distill.HARD_FRACTION}")
    if cfg.DATA.IMAGE_SIZE % 32:
        problems.append(f"DATA.IMAGE_SIZE must be a multiple of 32, got {cfg.DATA.IMAGE_SIZE}")
    if problems:
        raise TrainingError("bad training config: " + "; ".join(problems))


def train(cfg, init=None, resume=None, max_steps=None, time_limit=None, devices=None, verbose=None,
          run_eagerly=False, log=log):
    """Train (or resume) the run described by cfg; see the module docstring. Returns a RunResult.

    init: --init (a .weights.h5, a pretrained .json or name); resume: a run directory to continue;
    max_steps / time_limit (minutes): stop this session early, with a checkpoint; devices: a device list for
    MirroredStrategy (default: all GPUs); verbose: Keras progress (default: bar on a terminal, else per epoch);
    run_eagerly: run the train step without tf.function (for debugging: slow per step, but no tracing).
    """
    import keras

    policy = keras.mixed_precision.global_policy()
    try:
        return _train(cfg, init, resume, max_steps, time_limit, devices, verbose, run_eagerly, log)
    finally:
        keras.mixed_precision.set_global_policy(policy)  # the policy is process-global: leave it as found


def _train(cfg, init, resume, max_steps, time_limit, devices, verbose, run_eagerly, log):
    import keras

    cfg = copy.deepcopy(cfg)
    check_config(cfg)
    strategy = dist.make_strategy(devices)                        # before any other TF op
    chief = dist.is_chief()
    if not chief:
        log = _prefixed(log, f"(worker {dist.worker_index()}) ")
    if cfg.TRAIN.MIXED_PRECISION:
        keras.mixed_precision.set_global_policy(cfg.TRAIN.MIXED_PRECISION)
    if cfg.TRAIN.get("DISTILL", {}).get("TEACHER"):   # before seeding: building the teacher draws random numbers
        _prepare_teacher(cfg, log)
    keras.utils.set_random_seed(int(cfg.DATA.SEED))  # reproducible initial weights (the data seeds itself)

    run_dir = Path(resume or cfg.TRAIN.RUN_DIR)
    manager = CheckpointManager(run_dir / "checkpoints", keep=cfg.TRAIN.KEEP_CHECKPOINTS, write=chief, log=log)
    resuming = bool(manager.list())
    if resume and not resuming:
        raise TrainingError(f"--resume {resume}: no checkpoint in {run_dir / 'checkpoints'}")
    model_kwargs, preprocess, init_path = _decide_model(cfg, run_dir, resuming, init, log)

    replicas = strategy.num_replicas_in_sync
    try:
        steps_per_epoch = pipeline_steps_per_epoch(cfg, replicas)
    except (OSError, ValueError) as exc:  # a dataset spec that cannot be read
        raise TrainingError(f"DATA.TRAIN: {exc}") from None
    state = RunState(steps_per_epoch=steps_per_epoch, global_batch=cfg.TRAIN.BATCH_SIZE * replicas)
    total_steps = cfg.TRAIN.EPOCHS * state.steps_per_epoch
    log(dist.describe(strategy, cfg.TRAIN.BATCH_SIZE))
    log(f"{cfg.TRAIN.EPOCHS} epochs x {state.steps_per_epoch} steps = {total_steps} steps; data: "
        + (f"{len(cfg.DATA.TRAIN)} dataset(s)" if cfg.DATA.TRAIN else "synthetic text (DATA.TRAIN is empty)")
        + f", {cfg.DATA.IMAGE_SIZE}x{cfg.DATA.IMAGE_SIZE} crops")
    log(describe_optimizer(cfg.TRAIN, total_steps)
        + (f"; {cfg.TRAIN.MIXED_PRECISION}" if cfg.TRAIN.MIXED_PRECISION else ""))

    # Backbone weights (e.g. "imagenet") belong to a fresh model built from cfg.MODEL: a preset or a resumed
    # run brings all its weights (and a preset's backbone may not even have such weights).
    backbone_weights = (cfg.MODEL.BACKBONE_WEIGHTS or None) if not (resuming or preset_of(cfg, init)) else None
    model = _build_and_compile(strategy, cfg, model_kwargs, backbone_weights, total_steps, run_eagerly, log)
    if resuming:
        _resume(model, manager, state, log)
    else:
        _start_fresh(model, cfg, run_dir, model_kwargs, preprocess, init_path, chief, log)

    start_step = state.step
    if start_step >= total_steps:
        log(f"nothing to do: step {start_step} >= {total_steps} planned steps (raise TRAIN.EPOCHS to continue)")
    else:
        callbacks = _callbacks(cfg, state, manager, model_kwargs, preprocess, run_dir, chief, start_step,
                               max_steps, time_limit, log)
        if verbose is None:
            verbose = 1 if sys.stdout.isatty() else 2

        def data_from(step):
            return dist.distribute_dataset(strategy, lambda context: train_dataset(cfg, step, context))

        handlers = _install_stop_signals(callbacks)
        try:
            _fit(model, cfg, state, total_steps, callbacks, verbose, data_from, log)
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
    return _finish(model, state, cfg, run_dir, model_kwargs, preprocess, chief, start_step, total_steps, log)


def _prepare_teacher(cfg, log):
    """Cache the distillation teacher's maps of every training image that has none yet (db_tf.tools.cache_teacher).
    In a multi-worker run only the chief builds it: build the cache first (python -m db_tf.tools.cache_teacher)
    where the workers do not share the chief's CACHE_DIR, else a worker's first sample without maps fails."""
    from db_tf import presets
    from db_tf.tools.cache_teacher import build_cache

    try:
        folder, added = build_cache(cfg, log=log) if dist.is_chief() else (None, 0)
    except (presets.PresetError, OSError, ValueError) as exc:
        raise TrainingError(f"TRAIN.DISTILL: {exc}") from None
    d = cfg.TRAIN.DISTILL
    log(f"distillation from {d.TEACHER}: probability weight {d.WEIGHT} ({d.LOSS}), threshold weight "
        f"{d.THRESH_WEIGHT}; teacher maps in {folder} ({added} added now)")


def _prefixed(log, prefix):
    return lambda message: log(prefix + message)


def _decide_model(cfg, run_dir, resuming, init, log):
    """(model kwargs, preprocessing, init weights path or None); also applies the preprocessing to cfg.DATA.

    A run keeps the architecture and preprocessing recorded in run.json at its first start."""
    run_file = read_run_file(run_dir) if resuming else None
    if run_file:
        model_kwargs, preprocess, init_path = run_file["model"], run_file["preprocess"], None
        origin = f"as recorded in {run_dir / RUN_FILE}"
        if init:
            log(f"--init {init} ignored: resuming from the run's checkpoints")
    else:
        model_kwargs, preprocess, init_path, origin = plan_model(cfg, init)
    if preprocess != config_preprocess(cfg.DATA):
        log(f"preprocessing for this model overrides cfg.DATA: channel order {preprocess['channel_order']}, "
            f"mean {preprocess['mean']}, std {preprocess['std']} (cfg.DATA had {config_preprocess(cfg.DATA)})")
    cfg.DATA.CHANNEL_ORDER, cfg.DATA.MEAN, cfg.DATA.STD = (preprocess["channel_order"], list(preprocess["mean"]),
                                                            list(preprocess["std"]))
    if run_file:
        first, now = run_file.get("config", {}), _jsonable(cfg)
        _check_resumable(first, now, run_dir)
        changed = _config_differences(first, now)
        if changed:
            log("config changed since the run's first start: " + "; ".join(changed[:12])
                + (" ..." if len(changed) > 12 else ""))
    log(f"run directory {run_dir}; model {origin}: {model_kwargs}")
    return model_kwargs, preprocess, init_path


# Settings that decide which variables the optimizer holds: a checkpoint cannot be resumed under others.
RESUME_KEYS = ("OPTIMIZER", "FREEZE", "FREEZE_BN", "FREEZE_BN_EXCEPT", "MIXED_PRECISION", "EMA")


def _check_resumable(first_config, config, run_dir):
    """Both configs as JSON-able dicts (run.json's and the current one)."""
    first, now = first_config.get("TRAIN", {}), config.get("TRAIN", {})
    differ = [f"TRAIN.{key} {first[key]!r} -> {now.get(key)!r}" for key in RESUME_KEYS
              if key in first and first[key] != now.get(key)]
    if differ:
        raise TrainingError(f"cannot resume {run_dir} with this config: {'; '.join(differ)} since the run's first "
                            f"start (its checkpoints hold another optimizer state). Pass the run's own --config, "
                            f"or set a new TRAIN.RUN_DIR to start a new run")


def _jsonable(cfg):
    return json.loads(json.dumps(cfg, default=str))


def _build_and_compile(strategy, cfg, model_kwargs, backbone_weights, total_steps, run_eagerly=False, log=log):
    from db_tf.losses import build_loss

    with strategy.scope():
        model = build_dbnet(model_kwargs, backbone_weights=backbone_weights)
        if cfg.TRAIN.get("FREEZE"):   # before the optimizer sees the trainable variables
            frozen = model.freeze_parts(cfg.TRAIN.FREEZE)
            log(f"TRAIN.FREEZE: {', '.join(cfg.TRAIN.FREEZE)} frozen ({frozen} weights)")
        if cfg.TRAIN.get("FREEZE_BN", False):
            try:
                frozen, kept = model.freeze_batch_norm(keep_trainable=cfg.TRAIN.get("FREEZE_BN_EXCEPT", []))
            except ValueError as exc:
                raise TrainingError(str(exc)) from None
            log(f"TRAIN.FREEZE_BN: {frozen} BatchNorm layers frozen, {kept} kept trainable")
        model.compile(optimizer=build_optimizer(cfg.TRAIN, total_steps),
                      loss=build_loss(cfg.TRAIN.LOSS, cfg.TRAIN.get("DISTILL")),
                      run_eagerly=run_eagerly)
        model.optimizer.build(model.trainable_variables)  # so that a checkpoint restores its state too
    return dist.adapt_model_to_strategy(model, strategy)


def _resume(model, manager, state, log):
    restored_dir, saved = manager.restore(model)
    if restored_dir is None:
        raise TrainingError(f"{manager.directory} has checkpoints but none could be loaded (see above); "
                            f"move them away to start over")
    global_batch = state.global_batch
    state.restore(saved)
    _restore_best(manager, state)
    if saved.get("steps_per_epoch", state.steps_per_epoch) != state.steps_per_epoch:
        log(f"warning: steps per epoch changed ({saved['steps_per_epoch']} -> {state.steps_per_epoch}: more or "
            f"fewer training images, or another TRAIN.STEPS_PER_EPOCH / replica count); the epoch count, data "
            f"order and learning-rate schedule continue on the new length, so this run is no longer an exact "
            f"continuation")
    if saved.get("global_batch", global_batch) != global_batch:
        log(f"warning: the global batch changed ({saved['global_batch']} -> {global_batch}); the data "
            f"position continues in batches, the schedule in optimizer updates")
    log(f"resumed from {restored_dir}: step {state.step} (epoch {state.epoch}, batch {state.step_in_epoch} "
        f"of {state.steps_per_epoch}), optimizer iterations {int(model.optimizer.iterations.numpy())}, "
        f"lr {current_lr(model.optimizer):.10g}")


def _restore_best(manager, state):
    """The best validation so far, from the best checkpoint when it is newer than the restored state's record
    (a run stopped between a validation and its next checkpoint), so a resumed run never overwrites best.*
    with a worse model."""
    _, best = manager.latest_state("best")
    if best and int(best["step"]) <= state.step and float(best.get("hmean", -1.0)) > state.best_hmean:
        state.best_hmean, state.best_step = float(best["hmean"]), int(best["step"])


def _start_fresh(model, cfg, run_dir, model_kwargs, preprocess, init_path, chief, log):
    if init_path:
        try:
            report = load_matching_weights(model, init_path)
        except (OSError, ValueError) as exc:
            raise TrainingError(str(exc)) from None
        for line in format_report(report, init_path):
            log(line)
        if not report["loaded"]:
            raise TrainingError(f"--init {init_path}: no weight array matched this model")
    if chief:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_run_file(run_dir, {"model": model_kwargs, "preprocess": preprocess, "init": str(init_path or ""),
                                 "config": _jsonable(cfg), "started": time.time()})
    log(f"starting from step 0, lr {current_lr(model.optimizer):.10g}")


def _install_stop_signals(callbacks):
    """SIGTERM and the first Ctrl-C stop cleanly after the current step (a checkpoint is written);
    returns the previous handlers. Only possible in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    stop = next(c for c in callbacks if isinstance(c, StopControl))
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, stop.request_stop)
    return previous


def _fit(model, cfg, state, total_steps, callbacks, verbose, data_from, log):
    steps_per_epoch = state.steps_per_epoch
    # The validation LOSS is Keras' own (test_step on DATA.VAL at IMAGE_SIZE, every VAL_EVERY epochs; it runs
    # on every worker, as tf.distribute needs); precision / recall / hmean come from the Validator callback.
    validation = dict(validation_data=build_dataset(cfg, "val"), validation_freq=cfg.TRAIN.VAL_EVERY) \
        if cfg.DATA.VAL else {}
    common = dict(callbacks=callbacks, verbose=verbose, shuffle=False, **validation)
    with warnings.catch_warnings():
        # Keras warns when the finite validation dataset (of unknown length) ends: that is how it should end.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        if state.step_in_epoch:   # finish the interrupted epoch first (see the module docstring)
            log(f"finishing epoch {state.epoch + 1}: batches {state.step_in_epoch + 1}..{steps_per_epoch}")
            model.fit(data_from(state.step), epochs=state.epoch + 1, initial_epoch=state.epoch,
                      steps_per_epoch=steps_per_epoch - state.step_in_epoch, **common)
        if not model.stop_training and state.step < total_steps:
            model.fit(data_from(state.step), epochs=cfg.TRAIN.EPOCHS, initial_epoch=state.epoch,
                      steps_per_epoch=steps_per_epoch, **common)


def _callbacks(cfg, state, manager, model_kwargs, preprocess, run_dir, chief, start_step, max_steps,
               time_limit, log):
    deadline = time.time() + 60.0 * time_limit if time_limit else None
    if deadline and "TF_CONFIG" in os.environ:
        log("warning: --time-limit is ignored in multi-worker runs (workers must stop at the same step)")
        deadline = None
    max_step = start_step + max_steps if max_steps else None
    stop = StopControl(state, max_step=max_step, deadline=deadline)

    def on_best(model, state):
        _export(model, state, cfg, run_dir, "best", model_kwargs, preprocess, log)

    callbacks = [StepCounter(state), NonFiniteGuard(state, cfg.TRAIN.MAX_NAN_STEPS, log=log), stop]
    if cfg.DATA.VAL and chief:
        evaluate, count = make_evaluator(cfg, preprocess)
        if evaluate is None:
            log("DATA.VAL has no image files (synthetic only): validation loss only, no precision/recall/hmean")
        else:
            log(f"validation every {cfg.TRAIN.VAL_EVERY} epoch(s): detection on {count} images of DATA.VAL")
            callbacks.append(Validator(state, _on_averaged_weights(evaluate), cfg.TRAIN.VAL_EVERY, log=log))
    if chief:
        probe_images, probe_labels = None, None
        if cfg.TRAIN.IMAGE_EVERY > 0:
            probe_images, probe_labels = next(iter(train_dataset(cfg, 0).take(1)))
            probe_labels = {key: value.numpy() for key, value in probe_labels.items()}
        callbacks.append(TensorBoardLogger(state, run_dir / "logs", cfg.TRAIN.LOG_EVERY, cfg.TRAIN.IMAGE_EVERY,
                                           probe_images, probe_labels, make_denormalize(preprocess),
                                           log=None if sys.stdout.isatty() else log))
    callbacks.append(CheckpointSaver(state, manager, cfg.TRAIN.CHECKPOINT_EVERY, on_best=on_best if chief else None,
                                     log=log))
    return callbacks


def _on_averaged_weights(evaluate):
    """evaluate(model) on the weights' moving average when TRAIN.EMA > 0 (on the weights themselves if not)."""
    def evaluate_averaged(model):
        with averaged_weights(model):
            return evaluate(model)
    return evaluate_averaged


def _export(model, state, cfg, run_dir, name, model_kwargs, preprocess, log):
    done = state.step >= cfg.TRAIN.EPOCHS * state.steps_per_epoch
    source = (f"db-tf train.py run {run_dir}: step {state.step}, epoch {state.epoch}"
              f"{'' if done else ' (training not finished)'}; data: "
              + (", ".join(str(spec.get("images", spec)) for spec in cfg.DATA.TRAIN) or "synthetic text")
              + (f"; val hmean {state.best_hmean:.4f}" if name == "best" else ""))
    with averaged_weights(model) as averaged:   # exports carry the moving average when TRAIN.EMA > 0
        path = export_pretrained(
            model, run_dir, name, export_kwargs(model_kwargs),
            dict(preprocess, short_side=cfg.POSTPROCESS.SHORT_SIDE, max_side=cfg.POSTPROCESS.MAX_SIDE),
            {"thresh": cfg.POSTPROCESS.THRESH, "box_thresh": cfg.POSTPROCESS.BOX_THRESH,
             "unclip_ratio": cfg.POSTPROCESS.UNCLIP_RATIO, "split_by_threshold": cfg.POSTPROCESS.SPLIT_BY_THRESHOLD},
            source + ("; weights: moving average (TRAIN.EMA)" if averaged else ""),
            "weights trained with db-tf (Apache-2.0 code); the training data's terms apply to them")
    log(f"exported {path} + {path.with_name(name + '.weights.h5').name}")


def _finish(model, state, cfg, run_dir, model_kwargs, preprocess, chief, start_step, total_steps, log):
    if state.failed:
        log(state.stop_reason)
    elif state.stop_reason:
        log(f"stopped: {state.stop_reason}; rerun the same command to continue")
    if chief and not state.failed:
        try:
            _export(model, state, cfg, run_dir, "final", model_kwargs, preprocess, log)
        except NonFiniteError as exc:
            log(str(exc))
            state.failed = True
    completed = state.step >= total_steps
    if completed:
        log(f"training finished at step {state.step}"
            + (f"; best val hmean {state.best_hmean:.4f} at step {state.best_step}" if state.best_step >= 0 else ""))
    return RunResult(run_dir=run_dir, start_step=start_step, step=state.step, completed=completed,
                     stop_reason=state.stop_reason, failed=state.failed, best_hmean=state.best_hmean)
