"""Presets: a model's architecture, weights, settings and provenance, loadable by name or from a folder.

A preset is a folder (the keras-hub layout)::

    config.json        {"model": DBNet keyword arguments, or {"members": [...]} for a DBNetEnsemble,
                        "preprocess": {"channel_order", "mean", "std", "short_side", "max_side"},
                        "postprocess": {"thresh", "box_thresh", "unclip_ratio", "split_by_threshold"}}
    model.weights.h5   the Keras weights
    metadata.json      {"name", "description", "source", "license", "training_data", "validation": {...}}

The shipped presets are package data in this folder (db_tf/presets/<name>/), so they work wherever db-tf
is installed. ``resolve`` also takes a preset folder anywhere, and the pair a training run writes
(``final.json`` with ``final.weights.h5`` beside it: one JSON holding config and metadata together).
TensorFlow is imported only when a model is built.
"""
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from db_tf import defaults

PRESETS_DIR = Path(__file__).resolve().parent
CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE = "config.json", "model.weights.h5", "metadata.json"
WEIGHTS_SUFFIX = ".weights.h5"
CONFIG_SECTIONS = ("model", "preprocess", "postprocess")


class PresetError(ValueError):
    """A preset name, folder or file that cannot be used; the message says which and why."""


@dataclass
class PresetFiles:
    config: Path           # config.json of a folder, or a run's <name>.json (config and metadata in one)
    weights: Path
    metadata: Path = None  # metadata.json of a folder


def list_presets():
    """Names of the shipped presets."""
    return sorted(p.name for p in PRESETS_DIR.iterdir() if (p / CONFIG_FILE).is_file() and (p / WEIGHTS_FILE).is_file())


def default_preset():
    """The preset used when none is named."""
    if defaults.DEFAULT_PRESET in list_presets():
        return defaults.DEFAULT_PRESET
    raise PresetError(f"no weights given and the default preset {defaults.DEFAULT_PRESET} is not installed in "
                      f"{PRESETS_DIR}: pass a preset name, folder or a run's final.json")


def resolve(source):
    """A shipped preset name, a preset folder (or its config.json / model.weights.h5), or a run's
    ``<name>.json`` / ``<name>.weights.h5`` pair -> its PresetFiles."""
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir() or path.name in (CONFIG_FILE, WEIGHTS_FILE):
        folder = path if path.is_dir() else path.parent
        return _folder_files(folder, text)
    if text.endswith(WEIGHTS_SUFFIX) or path.suffix.lower() == ".json":
        stem = text[: -len(WEIGHTS_SUFFIX)] if text.endswith(WEIGHTS_SUFFIX) else text[: -len(".json")]
        files = PresetFiles(Path(stem + ".json"), Path(stem + WEIGHTS_SUFFIX))
        if not files.config.is_file():
            raise PresetError(f"no preset metadata {files.config} (for {text!r})")
        return files
    if "/" in text or "\\" in text or not (PRESETS_DIR / text).is_dir():
        raise PresetError(f"no preset {text!r}: not a shipped preset ({', '.join(list_presets())}) nor a folder "
                          f"holding {CONFIG_FILE} and {WEIGHTS_FILE}")
    return _folder_files(PRESETS_DIR / text, text)


def _folder_files(folder, text):
    files = PresetFiles(folder / CONFIG_FILE, folder / WEIGHTS_FILE, folder / METADATA_FILE)
    if not files.config.is_file():
        raise PresetError(f"preset folder {folder} (for {text!r}) has no {CONFIG_FILE}")
    return files


def read_metadata(source):
    """Everything known of a preset as one dict: "name", "model", "preprocess", "postprocess" (missing
    settings get the defaults of db_tf/defaults.py) and the metadata ("source", "license", ...)."""
    files = resolve(source)
    meta = _read_json(files.config)
    if files.metadata is not None and files.metadata.is_file():
        meta = {**_read_json(files.metadata), **meta}
    if not isinstance(meta.get("model"), dict):
        raise PresetError(f"{files.config}: needs a \"model\" object of DBNet keyword arguments")
    settings = defaults.detector_defaults()
    for section, keys in (("preprocess", defaults.PRESET_PREPROCESS_KEYS),
                          ("postprocess", defaults.PRESET_POSTPROCESS_KEYS)):
        given = meta.get(section, {})
        if not isinstance(given, dict):
            raise PresetError(f"{files.config}: \"{section}\" must be an object")
        unknown = set(given) - set(keys)
        if unknown:
            raise PresetError(f"{files.config}: unknown {section} keys {sorted(unknown)}; known: {sorted(keys)}")
        meta[section] = {**{key: settings[key] for key in keys}, **given}
    meta.setdefault("name", files.config.parent.name if files.metadata else files.config.stem)
    return meta


def _read_json(path):
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PresetError(f"{path}: cannot read JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PresetError(f"{path}: expected a JSON object")
    return data


def weights_path(source):
    return resolve(source).weights


def load_preset(source):
    """-> (Keras model with the preset's weights, read_metadata(source))."""
    files = resolve(source)
    meta = read_metadata(source)
    if not files.weights.is_file():
        raise PresetError(f"{files.config}: its weights file {files.weights} is missing")
    from db_tf.models import model_from_kwargs  # TensorFlow only now

    try:
        model = model_from_kwargs(meta["model"])
    except (TypeError, ValueError) as exc:
        raise PresetError(f"{files.config}: cannot build the model {meta['model']}: {exc}") from None
    load_weights(model, files.weights)
    return model, meta


def load_weights(model, path):
    """model.load_weights with an error that names the file when the architecture does not fit."""
    path = Path(path)
    if not path.is_file():
        raise PresetError(f"weights file not found: {path}")
    try:
        model.load_weights(str(path))
    except Exception as exc:  # Keras raises various types for shape / layer mismatches
        raise PresetError(f"{path}: cannot load these weights into {model.name} "
                          f"(backbone={getattr(model, 'backbone_name', '?')}, "
                          f"neck={getattr(model, 'neck_name', '?')}): {exc}") from None
    return model


def save_preset(directory, model=None, meta=None, weights_file=None, overwrite=False):
    """Write a preset folder: config.json (meta's model / preprocess / postprocess), model.weights.h5 (from
    ``model``, or a copy of ``weights_file``) and metadata.json (the rest of ``meta``). Returns the folder."""
    directory = Path(directory)
    meta = dict(meta or {})
    if (directory / CONFIG_FILE).exists() and not overwrite:
        raise FileExistsError(f"{directory} already holds a preset; pass overwrite=True to replace it")
    if not isinstance(meta.get("model"), dict):
        raise PresetError("a preset needs meta['model'], the model's keyword arguments")
    directory.mkdir(parents=True, exist_ok=True)
    if model is not None:
        from db_tf.training.checkpoints import write_weights_without_optimizer

        write_weights_without_optimizer(model, directory / WEIGHTS_FILE)
    elif weights_file is not None:
        shutil.copyfile(weights_file, directory / WEIGHTS_FILE)
    else:
        raise PresetError("save_preset needs a model or a weights_file")
    config = {key: meta.pop(key) for key in CONFIG_SECTIONS if key in meta}
    meta.setdefault("name", directory.name)
    _write_json(directory / CONFIG_FILE, config)
    _write_json(directory / METADATA_FILE, meta)
    return directory


def _write_json(path, data):
    Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def metadata_beside(weights_file):
    """The preset config beside a weights file (a run's <stem>.json, or a folder's config.json), or None."""
    path = Path(str(weights_file))
    if not path.name.endswith(WEIGHTS_SUFFIX):
        return None
    if path.name == WEIGHTS_FILE and (path.parent / CONFIG_FILE).is_file():
        return path.parent / CONFIG_FILE
    json_path = path.with_name(path.name[: -len(WEIGHTS_SUFFIX)] + ".json")
    return json_path if json_path.is_file() else None
