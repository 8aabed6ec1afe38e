"""ppocrv4_ic15, stage 4 of 5: train at the zoom the model is tested at (issue #8).

    db-tf train --config configs/ppocrv4_ic15/stage4.py --set MODEL.NAME=runs/ppocrv4_ic15_stage3/best.json \
        --max-steps 112

Starts from stage 3's best epoch (configs/ppocrv4_ic15/stage3.py). When this stage ran, those weights were
shipped under the name "ppocrv4_ic15", hence MODEL.NAME below; pass the --set above to reproduce the chain
(or restore them: git show 03128d6:weights/ppocrv4_ic15.weights.h5 and .json). The shipped chain uses this
run's best epoch, step 112 (best.json); the run was stopped after 9.5 of its 22 planned epochs, none better,
so --max-steps 112 gives the same weights. What changes, and why:
  * DATA.AUG.CROP_MODE = "window": stages 1-3 used the official crop (EAST crop, then the crop is resized
    to fit 640), whose zoom is 640 / crop side: a median of 0.90x (80 % between 0.56x and 1.77x) whatever
    SCALE says. The model is tested at short side 1280, a 1.78x zoom of ICDAR 2015's 720 px images, so the
    small words it misses were mostly seen smaller in training (or ignored under MIN_TEXT_SIZE). A 640 window
    of the image scaled by SCALE = 1.2..2.4 (not resized; median zoom 1.82x) shows text at the test zoom.
  * 22 epochs (2464 steps) at Adam 2e-4 with 100 warm-up steps (each earlier restart dipped in its first
    epochs), poly decay to zero.
  * TRAIN.EMA = 0.99: validation and the exports use a moving average of the weights (a ~100-step horizon),
    which damps the epoch-to-epoch swings (+-0.03 hmean in stage 3) that made picking an epoch a gamble.
    A first try without it (16 planned epochs, stopped after 4) validated at 0.784 0.750 0.774 0.764.
Otherwise stage 2's settings (BN frozen except the threshold branch, validation every epoch at the shipped
settings: short side 1280, thresh 0.3, box 0.5, unclip 1.3).

Result (averaged weights, per epoch): 0.789 0.777 0.776 0.775 0.755 0.762 0.764 0.768 0.770 (stopped).
"""
from pathlib import Path

from db_tf.config import load_config

cfg = load_config(Path(__file__).with_name("stage1.py"))

cfg.MODEL.NAME = "ppocrv4_ic15"              # stage 3's result when this ran: see the docstring

cfg.DATA.AUG.CROP_MODE = "window"
cfg.DATA.AUG.SCALE = [1.2, 2.4]

cfg.TRAIN.RUN_DIR = "runs/ppocrv4_ic15_stage4"
cfg.TRAIN.EPOCHS = 22                        # 22 x 112 = 2464 steps
cfg.TRAIN.LR = 0.0002
cfg.TRAIN.WARMUP_STEPS = 100
cfg.TRAIN.EMA = 0.99
cfg.TRAIN.FREEZE_BN_EXCEPT = ["head/threshold"]
cfg.TRAIN.CHECKPOINT_EVERY = 112
cfg.TRAIN.KEEP_CHECKPOINTS = 6

cfg.POSTPROCESS.SHORT_SIDE = 1280
cfg.POSTPROCESS.BOX_THRESH = 0.5
cfg.POSTPROCESS.UNCLIP_RATIO = 1.3
