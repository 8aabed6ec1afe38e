"""db-tf as a library: `import db_tf` loads no top-level script, the `db-tf` command dispatches, presets load
and save the keras-hub way, and a `.keras` file of a DBNet loads without custom_objects."""
import json
import subprocess
import sys

import numpy as np
import pytest

from db_tf import cli


def test_import_db_tf_loads_no_top_level_script_and_no_tensorflow(repo_root):
    code = ("import sys, db_tf, db_tf.cli, db_tf.presets, db_tf.detector, db_tf.postprocess, db_tf.tiling, "
            "db_tf.data.readers;"
            "print(sorted(m for m in ('inference', 'evaluate', 'export', 'train', 'db_config', 'tensorflow')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_package_code_reads_no_path_of_the_checkout(repo_root):
    """Nothing in db_tf may find files through the repository around it (parents of its own folder)."""
    offenders = []
    for path in (repo_root / "db_tf").rglob("*.py"):
        text = path.read_text()
        if ".parent.parent" in text or "parents[1]" in text or "parents[2]" in text or "../shared" in text:
            offenders.append(str(path.relative_to(repo_root)))
    assert offenders == []


def test_db_tf_command_lists_commands_and_dispatches(capsys):
    assert cli.main([]) == 2 and "detect" in capsys.readouterr().out
    assert cli.main(["nonsense"]) == 2 and "unknown command 'nonsense'" in capsys.readouterr().err
    assert cli.main(["presets", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"ppocrv4_mobile", "ppocrv4_ic15", "ppocrv4_v6_ic15"} <= set(listed)
    for meta in listed.values():
        assert {"source", "license", "training_data", "validation", "description"} <= set(meta)
        assert 0 < meta["validation"]["hmean"] < 1
    with pytest.raises(SystemExit) as stop:
        cli.main(["detect", "--help"])
    assert stop.value.code == 0 and "usage: db-tf detect" in capsys.readouterr().out


@pytest.mark.slow
def test_presets_round_trip_and_keras_files(tmp_path):
    import keras

    from db_tf import DBNet, TextDetector, list_presets
    from db_tf.presets import PresetError

    assert "ppocrv4_mobile" in list_presets()
    model = DBNet(backbone="resnet18", inner_channels=32)
    images = np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype(np.float32)
    folder = model.save_to_preset(tmp_path / "mine", source="a test", license="MIT")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metadata.json", "model.weights.h5"]
    assert json.loads((folder / "metadata.json").read_text()) == {"source": "a test", "license": "MIT",
                                                                 "name": "mine"}
    again = DBNet.from_preset(folder)
    np.testing.assert_array_equal(np.asarray(again(images)), np.asarray(model(images)))
    with pytest.raises(FileExistsError, match="overwrite"):
        model.save_to_preset(folder)

    detector = TextDetector(model=model, short_side=64, box_thresh=0.45, channel_order="BGR")
    detector.save_to_preset(tmp_path / "det", license="MIT")
    loaded = TextDetector.from_preset(tmp_path / "det")
    assert loaded.settings["short_side"] == 64 and loaded.settings["box_thresh"] == 0.45
    assert loaded.settings["channel_order"] == "BGR" and loaded.meta["license"] == "MIT"

    from db_tf.models import DBNetEnsemble
    with pytest.raises(PresetError, match="holds a DBNetEnsemble, not a DBNet"):
        DBNet.from_preset("ppocrv4_v6_ic15")
    assert isinstance(DBNetEnsemble.from_preset("ppocrv4_v6_ic15"), DBNetEnsemble)

    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")   # registered: no custom_objects
    assert type(restored) is DBNet
    np.testing.assert_array_equal(np.asarray(restored(images)), np.asarray(model(images)))
