"""ppocrv4_ic15, stage 2 of 5: continue stage 1 at a lower learning rate (issue #8).

    db-tf train --config configs/ppocrv4_ic15/stage2.py --set MODEL.NAME=runs/ppocrv4_ic15/final.json

Starts from stage 1's step-1232 weights (runs/ppocrv4_ic15/final.json after stage 1 ran with --max-steps 1232).
When this stage ran, those weights were shipped under the name "ppocrv4_ic15", which is why MODEL.NAME below
says so; the shipped ppocrv4_ic15 is now the final model, so pass the --set above to reproduce the chain.
Stage 1 (Adam 1e-3) reached its best validation hmean at step 1232 and then became noisy (0.648 -> 0.557 ->
0.539 at short side 736): the step was too large for the model's state. Changes from stage 1:
  * a 3x lower learning rate (3e-4, 50 warm-up steps, poly 0.9 to zero over the stage) to settle in a minimum;
  * TRAIN.FREEZE_BN_EXCEPT = ["head/threshold"]: the freshly initialised threshold branch's BatchNorm learns,
    the imported BatchNorms stay frozen (stage 1 froze all of them, which kept thresh_loss high);
  * validation every epoch at the settings the stage-1 model was shipped with (short side 1152, box_thresh
    0.5, unclip 1.3), so best.* is chosen at test-time settings, and a checkpoint per epoch (112 steps) so the
    last ones can be averaged (db-tf package-weights --average; the mean of the last 4 was worse: 0.732 vs 0.746).
Everything else (data, crops, batch, augmentation, loss) is stage 1's.
"""
from pathlib import Path

from db_tf.config import load_config

cfg = load_config(Path(__file__).with_name("stage1.py"))

cfg.MODEL.NAME = "ppocrv4_ic15"              # stage 1's result when this ran: see the docstring

cfg.TRAIN.RUN_DIR = "runs/ppocrv4_ic15_stage2"
cfg.TRAIN.EPOCHS = 12                        # 12 x 112 = 1344 steps
cfg.TRAIN.LR = 0.0003
cfg.TRAIN.WARMUP_STEPS = 50
cfg.TRAIN.FREEZE_BN_EXCEPT = ["head/threshold"]
cfg.TRAIN.CHECKPOINT_EVERY = 112
cfg.TRAIN.KEEP_CHECKPOINTS = 6

cfg.POSTPROCESS.SHORT_SIDE = 1152
cfg.POSTPROCESS.BOX_THRESH = 0.5
cfg.POSTPROCESS.UNCLIP_RATIO = 1.3
