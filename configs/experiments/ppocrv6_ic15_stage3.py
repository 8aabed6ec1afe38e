"""Stage 3 of the PP-OCRv6 small ICDAR 2015 fine-tuning (issue #8): ppocrv4_ic15's stage-10 recipe on it.

    db-tf train --config configs/experiments/ppocrv6_ic15_stage3.py --time-limit 60   # rerun to continue

From stage 2's final weights (configs/ppocrv4_v6_ic15.py), the recipe that gave ppocrv4_ic15 its last
gains: the backbone frozen (TRAIN.FREEZE = ["backbone"]), only the neck and the head adapt, Adam 1e-4 with
50 warm-up steps decaying to zero over 4 epochs (448 steps); 5:1 hard negatives and weight averaging as before.
"""
from pathlib import Path

from db_tf.config import load_config

cfg = load_config(Path(__file__).parents[1] / "ppocrv4_v6_ic15" / "ppocrv6_stage1.py")

cfg.MODEL.NAME = "runs/ppocrv6_ic15_stage2/final.json"   # PP-OCRv6 stage 2's final weights
cfg.TRAIN.FREEZE = ["backbone"]
cfg.TRAIN.RUN_DIR = "runs/ppocrv6_ic15_stage3"
cfg.TRAIN.EPOCHS = 4                         # 4 x 112 = 448 steps
cfg.TRAIN.LR = 0.0001
cfg.TRAIN.WARMUP_STEPS = 50
