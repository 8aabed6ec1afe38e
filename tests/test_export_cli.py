"""export.py end to end on a tiny pretrained-style model (.weights.h5 + .json): layout, baked settings,
the after-export check, and clear errors."""
import json

import keras
import pytest

from db_tf.cli import export
from db_tf.models import DBNet

META = {"name": "tiny", "model": {"backbone": "resnet18", "inner_channels": 32},
        "preprocess": {"channel_order": "BGR", "short_side": 64, "max_side": 128},
        "postprocess": {"thresh": 0.35, "box_thresh": 0.55, "unclip_ratio": 1.7}}


@pytest.fixture(scope="module")
def tiny_json(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    keras.utils.set_random_seed(0)
    DBNet(**META["model"]).save_weights(str(folder / "tiny.weights.h5"))
    (folder / "tiny.json").write_text(json.dumps(META))
    return folder / "tiny.json"


@pytest.mark.slow
def test_saved_model_export_from_the_command_line(tiny_json, tmp_path, capsys):
    output = tmp_path / "models" / "dbnet"
    assert export.main(["--weights", str(tiny_json), "--output", str(output), "--version", "2"]) == 0
    printed = capsys.readouterr().out
    assert (output / "2" / "saved_model.pb").is_file()
    meta = json.loads((output / "2" / "assets.extra" / "db_tf_export.json").read_text())
    assert meta["name"] == "tiny" and meta["model"]["inner_channels"] == 32
    assert meta["preprocess"] == {"channel_order": "BGR", "mean": [0.485, 0.456, 0.406],
                                  "std": [0.229, 0.224, 0.225], "short_side": 64, "max_side": 128, "size": None}
    assert meta["postprocess"]["thresh"] == 0.35 and meta["postprocess"]["unclip_ratio"] == 1.7
    difference = float(printed.split("|exported - Keras| on a synthetic text image: max ")[1].split(",")[0])
    assert difference < 1e-4
    assert f"-v {output.resolve()}:/models/dbnet" in printed

    # the same version again: refused with a clear message, the existing model untouched
    assert export.main(["--weights", str(tiny_json), "--output", str(output), "--version", "2",
                        "--no-check"]) == 2
    assert "exists: choose another --version" in capsys.readouterr().err


def test_bad_weights_and_formats_are_clear_errors(tmp_path, capsys):
    assert export.main(["--weights", "no_such_model", "--output", str(tmp_path)]) == 2
    assert "no_such_model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export.main(["--format", "caffe"])
    assert "invalid choice: 'caffe'" in capsys.readouterr().err
