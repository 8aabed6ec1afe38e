"""Run 4 (ppocrv4_ic15_distill_heavy.py) with synthetic images instead of MSRA-TD500 as the teacher-only extra
images (issue #21: do extra unlabelled images help, and which?).

    python -m db_tf.synth --out runs/synth300 --num 300 --size 960 --seed 21     # db-tf's text generator
    export ICDAR2015_ROOT=... DISTILL_SYNTH_ROOT=runs/synth300
    python train.py --config configs/experiments/ppocrv4_ic15_distill_synth.py --time-limit 60

The synthetic images' own labels are not used: like MSRA-TD500's they train through the teacher's maps alone,
in a fifth of the samples, so the comparison with run 4 changes only where the extra images come from.

Result (run 11 in docs/distillation.md): validation H per epoch 0.787 0.790 0.794 0.792; run 4 (MSRA-TD500)
0.792 0.787 0.793 0.790; without extra images (run 10) 0.787 0.792 0.797 0.799.
"""
from pathlib import Path

from db_tf.config import data_root, load_config

cfg = load_config(Path(__file__).parents[1] / "ppocrv4_ic15_distill.py")
cfg.TRAIN.DISTILL.WEIGHT = 30.0
cfg.TRAIN.DISTILL.THRESH_WEIGHT = 10.0

_SYNTH = data_root("DISTILL_SYNTH_ROOT", example="runs/synth300")
cfg.DATA.TRAIN = [spec for spec in cfg.DATA.TRAIN if spec["format"] != "images"]   # no MSRA-TD500
cfg.DATA.TRAIN.append({"format": "images", "images": str(_SYNTH / "images"), "ratio": 0.25})

cfg.TRAIN.RUN_DIR = "runs/ppocrv4_ic15_distill_synth"
