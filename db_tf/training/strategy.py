"""Choosing the tf.distribute strategy and the global batch.

* TF_CONFIG set           -> MultiWorkerMirroredStrategy (one process per machine, all its GPUs).
* one or more local GPUs  -> MirroredStrategy over all of them.
* CPU only                -> the default strategy (one replica); a MirroredStrategy over one CPU would only
                             add overhead. `devices=` forces a MirroredStrategy over the named devices (tests
                             use it with logical CPU devices).

Batch and learning rate: cfg.TRAIN.BATCH_SIZE is PER REPLICA, so the global batch is BATCH_SIZE x replicas.
Every replica computes the DB loss on its own part of the batch and the gradients are averaged (the train
step divides each replica's loss by the replica count, the optimizer sums the gradients), so one step on R
replicas equals one step on one device with the global batch, up to two batch-coupled parts of DBNet:
BatchNorm batch statistics (per replica, as with torch DataParallel without SyncBN) and the loss' hard-negative
mining and Dice sums (per replica here; over the whole batch in the official code, which gathers the outputs
on one GPU). tests/test_distributed.py checks both the equality and the averaging.
BN moving statistics: Keras 3 creates them without a cross-replica aggregation, so each replica keeps
updating its own copy from its own batches and checkpoints/exports hold replica 0's (estimated from a 1/R
sample of the data; torch DataParallel likewise keeps only GPU 0's updates).
The learning rate is NOT rescaled automatically. The official configs use lr 0.007 for a global batch of 16;
with a different global batch the linear scaling rule (lr x global_batch / 16) is a common starting point:
set TRAIN.LR yourself.
"""
import json
import os

import tensorflow as tf


def make_strategy(devices=None):
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if devices:
        return tf.distribute.MirroredStrategy(devices=list(devices))
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy(devices=[gpu.name for gpu in gpus])
    return tf.distribute.get_strategy()


def is_chief():
    """True for the process that writes checkpoints, summaries and exports (worker 0, or a single process)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    if not task:
        return True
    return task.get("type") == "chief" or (task.get("type") == "worker" and task.get("index", 0) == 0
                                           and "chief" not in config.get("cluster", {}))


def worker_index():
    task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
    return int(task.get("index", 0))


def describe(strategy, per_replica_batch):
    replicas = strategy.num_replicas_in_sync
    name = "MultiWorkerMirroredStrategy" if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) \
        else "MirroredStrategy" if isinstance(strategy, tf.distribute.MirroredStrategy) else "default strategy"
    return (f"distribution: {name} with {replicas} replica(s); global batch "
            f"{per_replica_batch} x {replicas} = {per_replica_batch * replicas} (LR not rescaled)")


def distribute_dataset(strategy, dataset_fn):
    """dataset_fn(input_context or None) -> per-replica-batched tf.data.Dataset; distributed when needed."""
    if strategy.num_replicas_in_sync == 1 and not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return dataset_fn(None)
    return strategy.distribute_datasets_from_function(dataset_fn)


def adapt_model_to_strategy(model, strategy):
    """Work around two Keras 3 bugs with MultiWorkerMirroredStrategy (keras-team/keras#20585); no-op otherwise.

    1. fit() first draws a batch and reduces it across workers to build the model symbolically, which fails
       for nested batches; our model and optimizer are built before fit, so that step is skipped.
    2. The per-step logs are reduced with strategy.reduce("MEAN", value, axis=0), which fails for scalars;
       the train/test step logs are returned with shape (1,), so that reduction yields their mean over all
       replicas (a scalar) as intended.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return model
    model._maybe_symbolic_build = lambda *args, **kwargs: None
    for name in ("train_step", "test_step"):
        step = getattr(model, name)

        def step_with_rank1_logs(data, step=step):
            return {key: tf.reshape(value, [1]) for key, value in step(data).items()}

        setattr(model, name, step_with_rank1_logs)
    return model
