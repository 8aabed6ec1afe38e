"""Stage 2 of the PP-OCRv6 small ICDAR 2015 fine-tuning (issue #8): more epochs at a lower learning rate.

    python train.py --config configs/ppocrv6_ic15_stage2.py --time-limit 60   # rerun to continue

From configs/ppocrv6_ic15.py's final weights (12 epochs, Adam 1e-3 decaying to zero; validation still rising
at the end: see README), the same recipe restarted at Adam 3e-4 (ppocrv4_ic15's stage 2 lr), 50 warm-up steps,
decaying to zero over 8 epochs (896 steps).
"""
from pathlib import Path

from db_tf.config import load_config

cfg = load_config(Path(__file__).with_name("ppocrv6_ic15.py"))

cfg.MODEL.NAME = "runs/ppocrv6_ic15/final.json"
cfg.TRAIN.RUN_DIR = "runs/ppocrv6_ic15_stage2"
cfg.TRAIN.EPOCHS = 8                         # 8 x 112 = 896 steps
cfg.TRAIN.LR = 0.0003
cfg.TRAIN.WARMUP_STEPS = 50
