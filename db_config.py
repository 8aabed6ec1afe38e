"""db-tf configuration: edit this file (or pass --set KEY=VALUE) and run the scripts.

Every key, its default and a line on what it does are in db_tf/defaults.py; this file starts from those
defaults and changes what your run needs. Keys are checked when the file is loaded: an unknown key (a typo
such as cfg.TRAIN.EPOCS) or a value of the wrong type (cfg.TRAIN.LR = "0.01") is an error naming the key.
A copy of this file is a recipe of its own: `python train.py --config my_config.py`.
"""
from db_tf.defaults import default_config

cfg = default_config()

# ---------------------------------------------------------------- model
# cfg.MODEL.NAME = "ppocrv4_mobile"      # start from a shipped preset; "" = build from MODEL.BACKBONE / NECK
# cfg.MODEL.BACKBONE = "resnet18"        # resnet18 | resnet34 | resnet50 | keras_resnet50
# cfg.MODEL.NECK = "fpn"                 # fpn (DBNet) | asf (DBNet++)

# ---------------------------------------------------------------- data
# Each dataset: {"format": ..., "images": dir, "labels": dir or file, "ratio": sampling weight}; formats and
# options are listed at DATA.TRAIN in db_tf/defaults.py. An empty list trains on synthetic text.
# cfg.DATA.TRAIN = [{"format": "icdar2015", "images": "data/ic15/imgs", "labels": "data/ic15/gts",
#                    "select": "0:900"}]
# cfg.DATA.VAL = [{"format": "icdar2015", "images": "data/ic15/imgs", "labels": "data/ic15/gts",
#                  "select": "900:1000"}]

# ---------------------------------------------------------------- training
# cfg.TRAIN.RUN_DIR = "runs/db_r18"
# cfg.TRAIN.EPOCHS = 1200
# cfg.TRAIN.BATCH_SIZE = 8               # per replica
# cfg.TRAIN.LR = 0.007

# ---------------------------------------------------------------- inference
# cfg.POSTPROCESS.BOX_THRESH = 0.6
# cfg.POSTPROCESS.UNCLIP_RATIO = 1.5
