"""Every default of db-tf in one place: the configuration keys, their values and a line on each.

``default_config()`` returns a fresh copy (an EasyDict with sections MODEL, DATA, TRAIN, POSTPROCESS,
EXPORT). Values are the paper's / official DB code's unless a comment says otherwise. Config files
(db_config.py at the repository root, configs/*.py) start from these and change what they need;
``db_tf.config.load_config`` checks every key they set against this listing (an unknown key or a value
of another type is an error), so keep each default of the type users pass. TextDetector, presets,
post-processing and the importers read their defaults from here too (``detector_defaults``).
"""
from easydict import EasyDict as edict

IMAGENET_MEAN = [0.485, 0.456, 0.406]   # RGB, applied after /255
IMAGENET_STD = [0.229, 0.224, 0.225]

# Keys an entry of DATA.TRAIN / DATA.VAL may have, with their types. "format" is required.
DATASET_KEYS = {"format": str, "images": str, "labels": str, "ratio": (int, float), "name": str, "select": str,
                "num": int, "level": str, "ignore_labels": (list, tuple), "teacher": bool}


def default_config():
    """A fresh EasyDict of every default (callers may edit it freely)."""
    cfg = edict()

    # ---------------------------------------------------------------- model
    cfg.MODEL = edict()
    cfg.MODEL.NAME = ""                 # a shipped preset (e.g. "ppocrv4_mobile"); "" = build from the keys below
    cfg.MODEL.BACKBONE = "resnet18"     # resnet18 | resnet34 | resnet50 | deform_resnet18 | deform_resnet50 | ...
    cfg.MODEL.BACKBONE_WEIGHTS = ""     # "imagenet" for keras_resnet50 when online; "" = random init
    cfg.MODEL.NECK = "fpn"              # fpn (DBNet) | asf (DBNet++)
    cfg.MODEL.INNER_CHANNELS = 256      # FPN lateral width; the fused map has the same width
    cfg.MODEL.K = 50.0                  # amplifying factor of the approximate binarization
    cfg.MODEL.WEIGHTS = ""              # .weights.h5 to load for inference / export / --init

    # ---------------------------------------------------------------- data
    cfg.DATA = edict()
    # Each dataset: {"format": icdar2015|msra_td500|totaltext|ctw1500|polygon_txt|labelme|mmocr|paddleocr,
    #                "images": dir, "labels": dir, or the json / label file (mmocr, paddleocr),
    #                "ratio": sampling weight}
    #                {"format": "synth", "num": N, "ratio": w, "level": "word"} draws synthetic text on the fly.
    # Optional "select": "900:1000" slices the naturally sorted image list (ICDAR 2015 validation: img_901..img_1000).
    # labelme: optional "ignore_labels": ["###", ...]; paddleocr: image paths in the label file are relative to
    # "images".
    # An empty TRAIN list means: train on synthetic scene text generated on the fly.
    cfg.DATA.TRAIN = []
    cfg.DATA.VAL = []
    cfg.DATA.IMAGE_SIZE = 640           # training crop side
    cfg.DATA.SHRINK_RATIO = 0.4         # r in D = A (1 - r^2) / L
    cfg.DATA.THRESH_MIN = 0.3           # threshold map rescaled to [THRESH_MIN, THRESH_MAX]
    cfg.DATA.THRESH_MAX = 0.7
    cfg.DATA.MIN_TEXT_SIZE = 8          # texts whose min-area-rect short side is smaller are ignored
    cfg.DATA.MEAN = list(IMAGENET_MEAN)   # RGB, applied after /255
    cfg.DATA.STD = list(IMAGENET_STD)
    cfg.DATA.CHANNEL_ORDER = "RGB"      # "BGR" for imported PaddleOCR weights
    cfg.DATA.STRICT = False             # True: bad samples raise; False: logged and skipped
    cfg.DATA.AUG = edict()
    cfg.DATA.AUG.FLIP = True            # horizontal flip, p = 0.5
    cfg.DATA.AUG.ROTATE = 10.0          # max degrees; 0 disables
    cfg.DATA.AUG.SCALE = [0.5, 3.0]     # random scale range; [] disables
    cfg.DATA.AUG.CROP = True            # EAST-style text-avoiding random crop
    cfg.DATA.AUG.CROP_MODE = "resize"   # resize: crop then fit to IMAGE_SIZE (official) | window: no resize
    cfg.DATA.AUG.MIN_CROP_SIDE_RATIO = 0.1
    cfg.DATA.AUG.CROP_TRIES = 10
    cfg.DATA.AUG.COLOR_JITTER = 32.0 / 255.0   # brightness delta; 0 disables
    cfg.DATA.AUG.SATURATION = 0.5       # saturation factor range 1 +- this; 0 disables
    cfg.DATA.SYNTH = edict()
    cfg.DATA.SYNTH.NUM = 2000           # images in the synthetic epoch when no dataset is configured
    cfg.DATA.SYNTH.LEVEL = "word"       # word | line | mixed
    cfg.DATA.NUM_WORKERS = -1           # tf.data parallel calls; -1 = AUTOTUNE
    cfg.DATA.SEED = 0

    # ---------------------------------------------------------------- training
    cfg.TRAIN = edict()
    cfg.TRAIN.RUN_DIR = "runs/db_r18"
    cfg.TRAIN.EPOCHS = 1200
    cfg.TRAIN.STEPS_PER_EPOCH = 0       # 0 = one pass over the data
    cfg.TRAIN.BATCH_SIZE = 8            # per replica
    cfg.TRAIN.OPTIMIZER = "sgd"         # sgd | adam | adamw
    cfg.TRAIN.LR = 0.007
    cfg.TRAIN.MOMENTUM = 0.9
    cfg.TRAIN.WEIGHT_DECAY = 1e-4
    cfg.TRAIN.POLY_POWER = 0.9          # lr = LR * (1 - step / total_steps) ** POLY_POWER, per step
    cfg.TRAIN.WARMUP_STEPS = 0
    cfg.TRAIN.FREEZE = []               # parts whose weights stay as loaded: "backbone", "neck", "backbone/stage1"
    cfg.TRAIN.FREEZE_BN = False          # BatchNorm in inference mode, gamma/beta fixed (fine-tuning, small batches)
    cfg.TRAIN.FREEZE_BN_EXCEPT = []      # layer paths whose BN stays trainable, e.g. ["head/threshold"] (fresh)
    cfg.TRAIN.CLIPNORM = 0.0            # 0 = no gradient clipping
    cfg.TRAIN.EMA = 0.0                 # momentum of a moving average of the weights for validation/export; 0 = off
    cfg.TRAIN.MIXED_PRECISION = ""      # "" | mixed_float16 | mixed_bfloat16
    cfg.TRAIN.LOSS = edict()
    cfg.TRAIN.LOSS.ALPHA = 5.0          # probability-map BCE weight (official code); the paper's text uses 1
    cfg.TRAIN.LOSS.BETA = 10.0          # threshold-map L1 weight
    cfg.TRAIN.LOSS.GAMMA = 1.0          # binary-map Dice weight
    cfg.TRAIN.LOSS.NEGATIVE_RATIO = 3.0
    cfg.TRAIN.LOSS.MIN_NEGATIVES = 100  # hard negatives still mined in a batch with no positive pixel
    cfg.TRAIN.LOSS.BINARY = "dice"      # dice | bce
    cfg.TRAIN.DISTILL = edict()          # distillation from a teacher's maps (docs/distillation.md)
    cfg.TRAIN.DISTILL.TEACHER = ""      # a shipped preset or a run's .json (e.g. "ppocrv4_v6_ic15"); "" = off
    cfg.TRAIN.DISTILL.WEIGHT = 1.0      # weight of the probability-map term: mean over valid pixels of LOSS(P_t, P)
    cfg.TRAIN.DISTILL.THRESH_WEIGHT = 0.0   # weight of the threshold-map term: mean |teacher T - T| over valid pixels
    cfg.TRAIN.DISTILL.LOSS = "bce"      # bce (Bernoulli KL: BCE minus the teacher's entropy, 0 at a match) | mse | l1
    cfg.TRAIN.DISTILL.HARD_FRACTION = 0.0   # (0, 1]: the P term averages only this fraction of pixels that differ most
    cfg.TRAIN.DISTILL.CACHE_DIR = "runs/teacher_cache"   # where the teacher's maps are cached, one file per image
    cfg.TRAIN.DISTILL.SHORT_SIDE = 0    # short side the teacher sees; 0 = the teacher's own setting
    cfg.TRAIN.CHECKPOINT_EVERY = 500    # steps
    cfg.TRAIN.KEEP_CHECKPOINTS = 3
    cfg.TRAIN.LOG_EVERY = 50            # steps between TensorBoard scalars
    cfg.TRAIN.IMAGE_EVERY = 500         # steps between TensorBoard map images
    cfg.TRAIN.VAL_EVERY = 1             # epochs between validations (when DATA.VAL is set)
    cfg.TRAIN.MAX_NAN_STEPS = 10        # consecutive non-finite losses before the run stops

    # ---------------------------------------------------------------- inference / post-processing
    cfg.POSTPROCESS = edict()
    cfg.POSTPROCESS.THRESH = 0.3        # binarization threshold on the probability map
    cfg.POSTPROCESS.BOX_THRESH = 0.6    # minimum mean score of a kept box
    cfg.POSTPROCESS.UNCLIP_RATIO = 1.5  # r' in D' = A' r' / L'
    cfg.POSTPROCESS.POLYGON = False     # polygon mode (curved text) instead of boxes
    cfg.POSTPROCESS.POLY_UNCLIP_RATIO = 2.0
    cfg.POSTPROCESS.SCORE_MODE = "fast" # fast (box mean) | slow (contour mean)
    cfg.POSTPROCESS.DILATE = False
    cfg.POSTPROCESS.SPLIT_BY_THRESHOLD = False  # also cut candidates where P < threshold map T (needs the T branch)
    cfg.POSTPROCESS.MAX_CANDIDATES = 1000
    cfg.POSTPROCESS.SHORT_SIDE = 736    # resize policy: short side to this, sides rounded to multiples of 32
    cfg.POSTPROCESS.MAX_SIDE = 2560     # long-side limit applied after the short-side resize; 0 = none

    # ---------------------------------------------------------------- export
    cfg.EXPORT = edict()
    cfg.EXPORT.OUTPUT = "exported"
    cfg.EXPORT.FORMAT = "saved_model"   # saved_model | onnx | tflite
    cfg.EXPORT.VERSION = 1
    return cfg


# Config key -> setting name of TextDetector, presets and exports (pre- and post-processing).
DETECTOR_CONFIG_KEYS = {
    "POSTPROCESS.THRESH": "thresh", "POSTPROCESS.BOX_THRESH": "box_thresh",
    "POSTPROCESS.UNCLIP_RATIO": "unclip_ratio", "POSTPROCESS.POLY_UNCLIP_RATIO": "poly_unclip_ratio",
    "POSTPROCESS.POLYGON": "polygon", "POSTPROCESS.SCORE_MODE": "score_mode", "POSTPROCESS.DILATE": "dilate",
    "POSTPROCESS.MAX_CANDIDATES": "max_candidates", "POSTPROCESS.SPLIT_BY_THRESHOLD": "split_by_threshold",
    "POSTPROCESS.SHORT_SIDE": "short_side", "POSTPROCESS.MAX_SIDE": "max_side",
    "DATA.MEAN": "mean", "DATA.STD": "std", "DATA.CHANNEL_ORDER": "channel_order"}
# What a preset's config.json records of them
PRESET_PREPROCESS_KEYS = ("channel_order", "mean", "std", "short_side", "max_side")
PRESET_POSTPROCESS_KEYS = ("thresh", "box_thresh", "unclip_ratio", "split_by_threshold")
DEFAULT_PRESET = "ppocrv4_mobile"   # the model used when none is named


def settings_from_config(cfg):
    """Detector settings (names of DETECTOR_CONFIG_KEYS) from a config."""
    settings = {}
    for dotted, name in DETECTOR_CONFIG_KEYS.items():
        section, key = dotted.split(".")
        settings[name] = cfg[section][key]
    return settings


def detector_defaults():
    """Every TextDetector setting's default ("size": a fixed network input size instead of the policy)."""
    return {**settings_from_config(default_config()), "size": None}

# Tiled inference (db_tf/tiling.py): window side and overlap in network pixels (an overlap below 1 is a
# fraction of the side: 0.125 = 128 at 1024); scale None = the resize policy's zoom (short_side / the image's
# short side).
TILE = {"size": 1024, "overlap": 0.125, "scale": None}   # overlap 128 at size 1024
# Inference precision of TextDetector: "float32" | "bfloat16" (the forward in bfloat16, maps in float32).
PRECISIONS = ("float32", "bfloat16")
PRECISION = "float32"
