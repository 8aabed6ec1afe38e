"""The last stage of the long distillation run: its final weights annealed with the backbone frozen (issue #21).

    export ICDAR2015_ROOT=... MSRA_TD500_ROOT=...
    python train.py --config configs/experiments/ppocrv4_ic15_distill_long.py         # first, ~2400 steps
    python train.py --config configs/experiments/ppocrv4_ic15_distill_long_anneal.py  # then this, 600 steps
    python train.py --config configs/experiments/ppocrv4_ic15_distill_long_anneal.py \
        --set DATA.SEED=1 TRAIN.RUN_DIR=runs/ppocrv4_ic15_distill_long_anneal_seed1   # other data seeds, to average

Stage 10's role in the shipped recipe (configs/ppocrv4_ic15.py: backbone frozen, 5:1 hard negatives, Adam 1e-4
decaying to zero) with run 4's teacher terms (configs/experiments/ppocrv4_ic15_distill_heavy.py: probability KL
weight 30, threshold L1 weight 10, MSRA-TD500 images labelled by the teacher alone), started from the long run.

Result (run 9 in docs/distillation.md): validation H per epoch 0.771 0.772 0.774 0.776, no better than the
long run's own final weights (0.778).
"""
from pathlib import Path

from db_tf.config import load_config

cfg = load_config(Path(__file__).parents[1] / "ppocrv4_ic15_distill.py")
cfg.TRAIN.DISTILL.WEIGHT = 30.0
cfg.TRAIN.DISTILL.THRESH_WEIGHT = 10.0

cfg.MODEL.NAME = "runs/ppocrv4_ic15_distill_long/final.json"
cfg.TRAIN.RUN_DIR = "runs/ppocrv4_ic15_distill_long_anneal"
