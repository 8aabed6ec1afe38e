"""Load config files (db_config.py, configs/*.py) and apply `--set KEY=VALUE` overrides, all checked
against the defaults of db_tf/defaults.py: an unknown key or a value of another type is a ConfigError that
names the key (and the file), never a setting silently ignored."""
import argparse
import ast
import copy
import importlib.util
import os
from pathlib import Path

from easydict import EasyDict

from db_tf.defaults import DATASET_KEYS, default_config


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message says which and why."""


def load_config(path=None, overrides=()):
    """The defaults, or ``cfg`` of a Python config file checked against them, then `KEY=VALUE` overrides."""
    cfg = default_config() if path is None else _read_file(Path(path))
    apply_overrides(cfg, overrides)
    return cfg


def _read_file(path):
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    spec = importlib.util.spec_from_file_location(f"_db_config_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the file is user code: say which file failed
        raise ConfigError(f"cannot execute config file {path}: {exc}") from exc
    if not isinstance(getattr(module, "cfg", None), dict):
        raise ConfigError(f"config file {path} defines no `cfg` dictionary")
    cfg = EasyDict(copy.deepcopy(dict(module.cfg)))
    try:
        return validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def validate(cfg, defaults=None):
    """Check every key of ``cfg`` against the defaults (same type; numbers may be int for float) and fill
    in the keys it lacks; returns cfg. Dataset entries of DATA.TRAIN / DATA.VAL are checked too."""
    defaults = default_config() if defaults is None else defaults
    _check_section(cfg, defaults, "")
    for split in ("TRAIN", "VAL"):
        for index, spec in enumerate(cfg.DATA[split]):
            _check_dataset(spec, f"DATA.{split}[{index}]")
    return cfg


def _check_section(section, defaults, prefix):
    for key in list(section):
        dotted = prefix + key
        if key not in defaults:
            known = ", ".join(sorted(defaults))
            raise ConfigError(f"unknown config key {dotted!r}; known in {prefix.rstrip('.') or 'top level'}: {known}")
        default = defaults[key]
        if isinstance(default, dict):
            if not isinstance(section[key], dict):
                raise ConfigError(f"{dotted} is a section; set one of its keys instead")
            _check_section(section[key], default, dotted + ".")
        else:
            section[key] = _typed(dotted, section[key], default)
    for key, default in defaults.items():
        section.setdefault(key, copy.deepcopy(default))


def _check_dataset(spec, where):
    if not isinstance(spec, dict) or not isinstance(spec.get("format"), str):
        raise ConfigError(f"{where} must be a dictionary with a \"format\" (see DATA.TRAIN in db_tf/defaults.py)")
    for key, value in spec.items():
        if key not in DATASET_KEYS:
            raise ConfigError(f"{where}: unknown dataset key {key!r}; known: {', '.join(DATASET_KEYS)}")
        wanted = DATASET_KEYS[key]
        if (isinstance(value, bool) and wanted is not bool) or not isinstance(value, wanted):
            names = " or ".join(t.__name__ for t in (wanted if isinstance(wanted, tuple) else (wanted,)))
            raise ConfigError(f"{where}: {key} must be {names}, got {value!r}")


def _typed(key, value, default):
    """``value`` as the default's type, or ConfigError (bool, int, float, str, list; None takes anything)."""
    if default is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
        value = list(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(f"bad value for {key}: expected {_type_name(default)} like the default "
                          f"{default!r}, got {value!r}")
    return value


def _type_name(default):
    return {bool: "True/False", float: "a number", int: "an integer", str: "a string"}.get(type(default), "a list")


def apply_overrides(cfg, overrides):
    """Set dotted keys, e.g. "TRAIN.EPOCHS=2"; the new value must have the default's type."""
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE")
        key, raw = item.split("=", 1)
        section, name = _resolve(cfg, key.strip())
        section[name] = _coerce(key, raw.strip(), section[name])
        if key.strip() in ("DATA.TRAIN", "DATA.VAL"):
            for index, spec in enumerate(section[name]):
                _check_dataset(spec, f"{key.strip()}[{index}]")
    return cfg


def _resolve(cfg, key):
    parts = key.split(".")
    node = cfg
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            known = ", ".join(sorted(node)) if isinstance(node, dict) else "(not a section)"
            where = ".".join(parts[:depth]) or "top level"
            raise ConfigError(f"unknown config key {key!r}: no {part!r} in {where}; known: {known}")
        if depth == len(parts) - 1:
            return node, part
        node = node[part]
    raise ConfigError(f"empty config key {key!r}")


def _coerce(key, raw, default):
    if isinstance(default, dict):
        raise ConfigError(f"{key} is a section; set one of its keys instead")
    if isinstance(default, str):
        return raw
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        if isinstance(default, bool) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ConfigError(f"bad value for {key}: {raw!r} is not a Python literal") from None
    return _typed(key, value, default)


def data_root(variable, example="/data/icdar2015_train"):
    """The dataset folder named by environment variable ``variable``: recipes (configs/*.py) take their data
    from there, never from a path of one machine. ConfigError saying what to set when it is unset."""
    value = os.environ.get(variable, "").strip()
    if not value:
        raise ConfigError(f"this recipe reads its data from ${variable}: set it to the dataset folder, e.g. "
                          f"export {variable}={example}")
    return Path(value).expanduser()


def add_config_args(parser: argparse.ArgumentParser, default_config_file=None):
    """The two options every command shares; ``default_config_file``: what --config defaults to (the
    repository's db_config.py for the top-level scripts; None = the package defaults)."""
    parser.add_argument("--config", default=None if default_config_file is None else str(default_config_file),
                        help="config file defining `cfg` (default: "
                             + (str(default_config_file) if default_config_file else "db-tf's defaults") + ")")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override config values, e.g. --set TRAIN.EPOCHS=2 MODEL.BACKBONE=resnet50")
    return parser


def config_from_args(args):
    return load_config(args.config, args.set)
