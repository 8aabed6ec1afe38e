from pathlib import Path

import pytest

from db_tf.config import ConfigError, apply_overrides, load_config


def test_default_config_has_paper_defaults():
    cfg = load_config()
    assert cfg.MODEL.K == 50.0
    assert cfg.DATA.SHRINK_RATIO == 0.4
    assert (cfg.DATA.THRESH_MIN, cfg.DATA.THRESH_MAX) == (0.3, 0.7)
    assert cfg.TRAIN.LR == 0.007 and cfg.TRAIN.MOMENTUM == 0.9 and cfg.TRAIN.WEIGHT_DECAY == 1e-4
    assert cfg.POSTPROCESS.THRESH == 0.3 and cfg.POSTPROCESS.UNCLIP_RATIO == 1.5
    assert cfg.DATA.IMAGE_SIZE == 640


def test_overrides_are_typed():
    cfg = load_config(overrides=["TRAIN.EPOCHS=2", "MODEL.BACKBONE=resnet50", "TRAIN.LR=1",
                                 "DATA.AUG.FLIP=false", "DATA.AUG.SCALE=[1.0, 2.0]"])
    assert cfg.TRAIN.EPOCHS == 2 and isinstance(cfg.TRAIN.EPOCHS, int)
    assert cfg.MODEL.BACKBONE == "resnet50"
    assert cfg.TRAIN.LR == 1.0 and isinstance(cfg.TRAIN.LR, float)
    assert cfg.DATA.AUG.FLIP is False
    assert cfg.DATA.AUG.SCALE == [1.0, 2.0]


def test_loaded_configs_are_independent():
    a = load_config(overrides=["TRAIN.EPOCHS=3"])
    a.DATA.MEAN.append(9.0)
    b = load_config()
    assert a.TRAIN.EPOCHS == 3 and b.TRAIN.EPOCHS == 1200
    assert len(b.DATA.MEAN) == 3



@pytest.fixture
def data_roots(tmp_path, monkeypatch):
    """The dataset variables the recipes read, pointed at a folder of this test (no real data needed)."""
    roots = {"ICDAR2015_ROOT": tmp_path / "ic15", "MSRA_TD500_ROOT": tmp_path / "td500",
             "DISTILL_SYNTH_ROOT": tmp_path / "synth"}
    for variable, path in roots.items():
        monkeypatch.setenv(variable, str(path))
    return roots


def test_shipped_recipes_loaded_in_one_process_do_not_leak_into_each_other(repo_root, data_roots):
    """Stage configs build on a base config: loading one must not change what the base or the defaults give."""
    configs = repo_root / "configs"
    stage10 = load_config(configs / "ppocrv4_ic15.py")   # sets window crops, EMA, a frozen backbone on stage 1
    assert stage10.DATA.AUG.CROP_MODE == "window" and stage10.TRAIN.EMA == 0.99
    assert stage10.TRAIN.FREEZE == ["backbone"]
    ensemble = load_config(configs / "ppocrv4_v6_ic15.py")   # changes its base's MODEL.NAME
    assert ensemble.MODEL.NAME == "runs/ppocrv6_ic15/final.json"
    stage1 = load_config(configs / "ppocrv4_ic15" / "stage1.py")
    stage2 = load_config(configs / "ppocrv4_ic15" / "stage2.py")
    for cfg in (stage1, stage2, load_config(configs / "experiments" / "r18_ic15.py"), load_config()):
        assert cfg.DATA.AUG.CROP_MODE == "resize" and cfg.TRAIN.EMA == 0.0 and cfg.TRAIN.FREEZE == []
    assert stage1.MODEL.NAME == "ppocrv4_mobile" and load_config().MODEL.NAME != "ppocrv4_mobile"
    assert load_config(configs / "ppocrv4_v6_ic15" / "ppocrv6_stage1.py").MODEL.NAME == "ppocrv6_small"


def test_recipes_take_their_data_from_the_environment(repo_root, data_roots, monkeypatch):
    """No recipe names a machine path: its datasets lie under $ICDAR2015_ROOT, and without it the error says
    which variable to set."""
    cfg = load_config(repo_root / "configs" / "ppocrv4_ic15.py")
    for spec in cfg.DATA.TRAIN + cfg.DATA.VAL:
        assert Path(spec["images"]).parent == data_roots["ICDAR2015_ROOT"]
    assert [spec["select"] for spec in cfg.DATA.TRAIN + cfg.DATA.VAL] == ["0:900", "900:1000"]
    monkeypatch.delenv("ICDAR2015_ROOT")
    with pytest.raises(ConfigError, match="ICDAR2015_ROOT"):
        load_config(repo_root / "configs" / "ppocrv4_ic15.py")


def test_the_synthetic_distillation_recipe_swaps_msra_for_the_synthetic_images(repo_root, data_roots):
    """Run 4 with other teacher-only images: the labelled data and teacher as in run 4, MSRA-TD500 replaced."""
    experiments = repo_root / "configs" / "experiments"
    heavy = load_config(experiments / "ppocrv4_ic15_distill_heavy.py")
    synth = load_config(experiments / "ppocrv4_ic15_distill_synth.py")
    assert heavy.DATA.TRAIN[1]["images"] == str(data_roots["MSRA_TD500_ROOT"] / "imgs")
    assert [spec["images"] for spec in synth.DATA.TRAIN] == [heavy.DATA.TRAIN[0]["images"],
                                                            str(data_roots["DISTILL_SYNTH_ROOT"] / "images")]
    assert synth.DATA.TRAIN[1]["format"] == "images" and synth.DATA.TRAIN[1]["ratio"] == heavy.DATA.TRAIN[1]["ratio"]
    assert synth.TRAIN.DISTILL == heavy.TRAIN.DISTILL and synth.TRAIN.FREEZE == heavy.TRAIN.FREEZE


@pytest.mark.parametrize("override, words", [
    ("TRAIN.EPOCS=2", ["unknown config key", "EPOCS", "EPOCHS"]),
    ("NOPE.X=1", ["unknown config key", "NOPE"]),
    ("TRAIN.EPOCHS=two", ["TRAIN.EPOCHS", "not a Python literal"]),
    ("TRAIN.EPOCHS=2.5", ["TRAIN.EPOCHS", "integer"]),
    ("TRAIN.LR=fast", ["TRAIN.LR"]),
    ("DATA.AUG.FLIP=3", ["DATA.AUG.FLIP", "True/False"]),
    ("TRAIN=1", ["section"]),
    ("TRAIN.EPOCHS", ["KEY=VALUE"]),
])
def test_bad_overrides_name_the_key(override, words):
    cfg = load_config()
    with pytest.raises(ConfigError) as info:
        apply_overrides(cfg, [override])
    for word in words:
        assert word in str(info.value)


def test_missing_and_broken_config_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.py")
    broken = tmp_path / "broken.py"
    broken.write_text("cfg = {\n")
    with pytest.raises(ConfigError, match="broken.py"):
        load_config(broken)
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(ConfigError, match="no `cfg`"):
        load_config(empty)


# ------------------------------------------------------------------ config files are checked like --set
def write_config(tmp_path, *lines):
    path = tmp_path / "my_config.py"
    path.write_text("from db_tf.defaults import default_config\ncfg = default_config()\n" + "\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("line, words", [
    ("cfg.TRAIN.EPOCS = 3", ["my_config.py", "unknown config key 'TRAIN.EPOCS'", "EPOCHS"]),
    ("cfg.TRAIN.LR = '0.01'", ["my_config.py", "TRAIN.LR", "a number", "'0.01'"]),
    ("cfg.TRAIN.EPOCHS = 2.5", ["TRAIN.EPOCHS", "an integer"]),
    ("cfg.DATA.AUG.FLIP = 1", ["DATA.AUG.FLIP", "True/False"]),
    ("cfg.MODELS = {}", ["unknown config key 'MODELS'"]),
    ("cfg.TRAIN.LOSS = 5", ["TRAIN.LOSS is a section"]),
    ("cfg.DATA.TRAIN = [{'format': 'icdar2015', 'image': 'x'}]", ["DATA.TRAIN[0]", "unknown dataset key 'image'"]),
    ("cfg.DATA.VAL = [{'images': 'x'}]", ["DATA.VAL[0]", "format"]),
    ("cfg.DATA.TRAIN = [{'format': 'synth', 'num': '10'}]", ["DATA.TRAIN[0]", "num must be int"]),
    ("cfg.DATA.TRAIN = [{'format': 'synth', 'num': True}]", ["DATA.TRAIN[0]", "num must be int"]),
    ("cfg.DATA.TRAIN = [{'format': 'images', 'images': 'x', 'teacher': 'no'}]", ["teacher must be bool"]),
])
def test_config_files_with_unknown_keys_or_wrong_types_are_refused(tmp_path, line, words):
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, line))
    for word in words:
        assert word in str(info.value)


def test_config_files_are_normalised_and_completed(tmp_path):
    cfg = load_config(write_config(tmp_path, "cfg.TRAIN.LR = 1", "del cfg.EXPORT.VERSION",
                                   "cfg.DATA.TRAIN = [{'format': 'synth', 'num': 10, 'ratio': 2},"
                                   " {'format': 'images', 'images': 'x', 'teacher': False}]"))
    assert cfg.TRAIN.LR == 1.0 and isinstance(cfg.TRAIN.LR, float)
    assert cfg.EXPORT.VERSION == load_config().EXPORT.VERSION   # an older file lacking a new key gets its default
    with pytest.raises(ConfigError, match=r"DATA.VAL\[0\]: unknown dataset key 'labelz'"):
        load_config(overrides=["DATA.VAL=[{'format': 'icdar2015', 'labelz': 'x'}]"])


def shipped_configs(repo_root):
    return [repo_root / "db_config.py", *sorted((repo_root / "configs").rglob("*.py"))]


def test_every_shipped_config_passes_the_check(repo_root, data_roots):
    paths = shipped_configs(repo_root)
    assert len(paths) >= 18   # db_config.py, 2 entry recipes, their stages, the experiments
    for path in paths:
        load_config(path)


def test_recipes_inherit_at_most_one_level(repo_root, data_roots, monkeypatch):
    """A recipe loads the defaults or one base that itself loads only the defaults: no chains of stages."""
    import db_tf.config as config_module

    read_file, depth, deepest = config_module._read_file, [0], {}

    def counting_read_file(path):
        depth[0] += 1
        deepest[path] = max(deepest.get(path, 0), depth[0])
        try:
            return read_file(path)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(config_module, "_read_file", counting_read_file)
    for path in shipped_configs(repo_root):
        deepest.clear()
        load_config(path)
        assert max(deepest.values()) <= 2, f"{path} loads a chain of configs: {deepest}"
