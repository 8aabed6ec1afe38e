"""Load `db_config.py`-style files and apply type-checked `--set KEY=VALUE` overrides."""
import argparse
import ast
import copy
import importlib.util
from pathlib import Path

from easydict import EasyDict

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "db_config.py"


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message says which and why."""


def load_config(path=None, overrides=()):
    """Read `cfg` from a Python config file, then apply `KEY=VALUE` overrides."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    spec = importlib.util.spec_from_file_location(f"_db_config_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the file is user code: say which file failed
        raise ConfigError(f"cannot execute config file {path}: {exc}") from exc
    if not hasattr(module, "cfg"):
        raise ConfigError(f"config file {path} defines no `cfg`")
    cfg = EasyDict(copy.deepcopy(dict(module.cfg)))
    apply_overrides(cfg, overrides)
    return cfg


def apply_overrides(cfg, overrides):
    """Set dotted keys, e.g. "TRAIN.EPOCHS=2"; the new value must have the default's type."""
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE")
        key, raw = item.split("=", 1)
        section, name = _resolve(cfg, key.strip())
        section[name] = _coerce(key, raw.strip(), section[name])
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
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"bad value for {key}: expected True/False, got {raw!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"bad value for {key}: expected a number, got {raw!r}")
        value = float(value)
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"bad value for {key}: expected an integer, got {raw!r}")
    elif isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"bad value for {key}: expected a list, got {raw!r}")
        value = list(value)
    return value


def add_config_args(parser: argparse.ArgumentParser):
    """The two options every script shares."""
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="config file defining `cfg`")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override config values, e.g. --set TRAIN.EPOCHS=2 MODEL.BACKBONE=resnet50")
    return parser


def config_from_args(args):
    return load_config(args.config, args.set)
