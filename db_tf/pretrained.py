"""Shipped / pretrained weights: ``weights/<name>.weights.h5`` + ``weights/<name>.json``.

The JSON says how to rebuild and use the model (schema in the project brief)::

    {"name": ..., "model": {DBNet keyword arguments} or {"members": [DBNet keyword arguments, ...]} (an ensemble),
     "preprocess": {"channel_order", "mean", "std", "short_side", "max_side"},
     "postprocess": {"thresh", "box_thresh", "unclip_ratio", "split_by_threshold"}, "source": ..., "license": ...}

``load_pretrained("ppocrv4_mobile")`` looks in the repository's ``weights/`` folder; a path to a ``.json``
(with its ``.weights.h5`` beside it) works from anywhere. TensorFlow is imported only when a model is built.
"""
import json
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
WEIGHTS_SUFFIX = ".weights.h5"
DEFAULT_MODEL = "ppocrv4_mobile"
PREPROCESS_DEFAULTS = {"channel_order": "RGB", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                       "short_side": 736, "max_side": 2560}
POSTPROCESS_DEFAULTS = {"thresh": 0.3, "box_thresh": 0.6, "unclip_ratio": 1.5, "split_by_threshold": False}


class PretrainedError(ValueError):
    """A pretrained name or metadata file that cannot be used; the message says which and why."""


def available_models(weights_dir=None):
    """Names of the models in ``weights_dir`` (default: the repository's weights/) that have both files."""
    folder = Path(weights_dir) if weights_dir else WEIGHTS_DIR
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if weights_path(p).is_file())


def weights_path(json_path):
    """The .weights.h5 that belongs to a metadata file: same folder, same stem."""
    json_path = Path(json_path)
    return json_path.with_name(json_path.stem + WEIGHTS_SUFFIX)


def metadata_beside(weights_file):
    """The .json beside a .weights.h5 (same stem), or None when there is none."""
    path = Path(str(weights_file))
    if not path.name.endswith(WEIGHTS_SUFFIX):
        return None
    json_path = path.with_name(path.name[: -len(WEIGHTS_SUFFIX)] + ".json")
    return json_path if json_path.is_file() else None


def default_model(weights_dir=None):
    """The model used when no weights are given: DEFAULT_MODEL when installed, otherwise a clear error."""
    folder = Path(weights_dir) if weights_dir else WEIGHTS_DIR
    if (folder / f"{DEFAULT_MODEL}.json").is_file():
        return DEFAULT_MODEL
    raise PretrainedError(
        f"no weights given and the default model is not installed ({folder / (DEFAULT_MODEL + '.json')} is "
        f"missing): pass weights, e.g. --weights runs/db_r18/final.weights.h5 (trained with train.py) or a "
        f"pretrained name / .json; installed: {', '.join(available_models(weights_dir)) or 'none'}")


def resolve(name_or_path, weights_dir=None):
    """A pretrained name, a .json path or a .weights.h5 path with a .json beside it -> the .json path."""
    text = str(name_or_path)
    path = Path(text)
    if text.endswith(WEIGHTS_SUFFIX):
        path = path.with_name(path.name[: -len(WEIGHTS_SUFFIX)] + ".json")
    elif path.suffix.lower() != ".json":
        path = (Path(weights_dir) if weights_dir else WEIGHTS_DIR) / f"{text}.json"
    if not path.is_file():
        known = ", ".join(available_models(weights_dir)) or "none installed"
        raise PretrainedError(f"no pretrained model metadata {path} (for {text!r}); available: {known}")
    return path


def read_metadata(json_path):
    """Read and check a metadata JSON; missing preprocess / postprocess keys get the documented defaults."""
    json_path = Path(json_path)
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PretrainedError(f"{json_path}: cannot read metadata JSON ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
        raise PretrainedError(f"{json_path}: metadata needs a \"model\" object of DBNet keyword arguments")
    for section, defaults in (("preprocess", PREPROCESS_DEFAULTS), ("postprocess", POSTPROCESS_DEFAULTS)):
        given = meta.get(section, {})
        if not isinstance(given, dict):
            raise PretrainedError(f"{json_path}: \"{section}\" must be an object")
        unknown = set(given) - set(defaults)
        if unknown:
            raise PretrainedError(f"{json_path}: unknown {section} keys {sorted(unknown)}; known: {sorted(defaults)}")
        meta[section] = {**defaults, **given}
    meta.setdefault("name", json_path.stem)
    return meta


def load_pretrained(name_or_json_path, weights_dir=None):
    """-> (DBNet with the weights loaded, metadata dict)."""
    json_path = resolve(name_or_json_path, weights_dir)
    meta = read_metadata(json_path)
    weights = weights_path(json_path)
    if not weights.is_file():
        raise PretrainedError(f"{json_path}: its weights file {weights} is missing")
    from db_tf.models import model_from_kwargs  # TensorFlow only now

    try:
        model = model_from_kwargs(meta["model"])
    except (TypeError, ValueError) as exc:
        raise PretrainedError(f"{json_path}: cannot build the model {meta['model']}: {exc}") from None
    load_weights(model, weights)
    return model, meta


def load_weights(model, path):
    """model.load_weights with an error that names the file when the architecture does not fit."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedError(f"weights file not found: {path}")
    try:
        model.load_weights(str(path))
    except Exception as exc:  # Keras raises various types for shape / layer mismatches
        raise PretrainedError(f"{path}: cannot load these weights into {model.name} "
                              f"(backbone={getattr(model, 'backbone_name', '?')}, "
                              f"neck={getattr(model, 'neck_name', '?')}): {exc}") from None
    return model
