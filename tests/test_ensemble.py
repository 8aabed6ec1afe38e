"""DBNetEnsemble: maps equal to the mean of its members' (run one by one), binary map from the means,
packaging from shipped-schema JSONs, loading by name, TextDetector and a SavedModel export."""
import json

import numpy as np
import pytest
import tensorflow as tf
from export_support import tiny_model
from tolerances import assert_maps_match

from db_tf import preprocess as pre
from db_tf.detector import TextDetector
from db_tf.export.saved_model import export_saved_model
from db_tf.models import DBNetEnsemble, constructor_kwargs
from db_tf.presets import load_preset
from db_tf.tools.package_weights import main as package

PREPROCESS = {"channel_order": "BGR", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "short_side": 64,
              "max_side": 128}


@pytest.fixture(scope="module")
def members():
    return [tiny_model(seed=0), tiny_model(seed=1)]


@pytest.fixture(scope="module")
def ensemble(members):
    combined = DBNetEnsemble([member.get_config() for member in members])
    for copy, member in zip(combined.members, members):
        copy.set_weights(member.get_weights())
    return combined


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(3).normal(size=(2, 64, 96, 3)).astype(np.float32)


def test_maps_are_the_mean_of_the_members(ensemble, members, images):
    alone = [member(images, training=False, return_maps=True) for member in members]
    probability = (np.asarray(alone[0]["probability"]) + np.asarray(alone[1]["probability"])) / 2
    threshold = (np.asarray(alone[0]["threshold"]) + np.asarray(alone[1]["threshold"])) / 2
    assert np.abs(np.asarray(alone[0]["probability"]) - np.asarray(alone[1]["probability"])).mean() > 0.05

    maps = ensemble(images, training=False, return_maps=True)
    np.testing.assert_allclose(np.asarray(maps["probability"]), probability, atol=1e-6)
    np.testing.assert_allclose(np.asarray(maps["threshold"]), threshold, atol=1e-6)
    # the paper's B = 1 / (1 + exp(-k (P - T))) of the averaged maps, not the mean of the members' B
    np.testing.assert_allclose(np.asarray(maps["binary"]), 1 / (1 + np.exp(-50.0 * (probability - threshold))),
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(ensemble(images, training=False)), probability, atol=1e-6)


def test_config_round_trip_and_clear_errors(ensemble, images):
    config = ensemble.get_config()
    assert [m["backbone"] for m in config["members"]] == ["resnet18", "resnet18"]
    rebuilt = DBNetEnsemble.from_config(config)
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in ensemble.weights]
    small = {"backbone": "resnet18", "inner_channels": 32}
    with pytest.raises(ValueError, match="at least two"):
        DBNetEnsemble([small])
    with pytest.raises(ValueError, match="binarization factor k"):
        DBNetEnsemble([small, {**small, "k": 10.0}])
    with pytest.raises(ValueError, match="inference only"):
        ensemble(images, training=True)
    with pytest.raises(TypeError, match="inference only"):
        ensemble.compile(optimizer="adam")


def write_pretrained(model, folder, name, **preprocess):
    model.save_weights(str(folder / f"{name}.weights.h5"))
    meta = {"name": name, "model": constructor_kwargs(model.get_config()),
            "preprocess": {**PREPROCESS, **preprocess}, "postprocess": {"box_thresh": 0.5}, "source": f"run {name}"}
    (folder / f"{name}.json").write_text(json.dumps(meta))
    return str(folder / f"{name}.json")


@pytest.mark.slow
def test_packaged_ensemble_loads_by_name_and_detects_with_the_mean_map(members, tmp_path):
    paths = [write_pretrained(member, tmp_path, f"m{index}") for index, member in enumerate(members)]
    out = tmp_path / "weights"
    assert package(["--from", *paths, "--name", "both", "--out-dir", str(out), "--split-by-threshold"]) == 0
    model, meta = load_preset(out / "both")
    assert isinstance(model, DBNetEnsemble) and len(model.members) == 2
    for copy, member in zip(model.members, members):
        for a, b in zip(copy.weights, member.weights):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert meta["preprocess"]["channel_order"] == "BGR" and meta["postprocess"]["split_by_threshold"] is True
    assert meta["source"].startswith("mean of the maps of m0 (run m0); m1 (run m1)")

    image = np.random.default_rng(5).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    maps = TextDetector.from_preset(out / "both").predict_maps([image], return_maps=True)[0]
    alone = [TextDetector(weights=path).predict_maps([image], return_maps=True)[0] for path in paths]
    for key in ("probability", "threshold"):
        np.testing.assert_allclose(maps[key], (alone[0][key] + alone[1][key]) / 2, atol=1e-5)


def test_members_must_share_the_normalisation(members, tmp_path, capsys):
    first = write_pretrained(members[0], tmp_path, "bgr")
    second = write_pretrained(members[1], tmp_path, "rgb", channel_order="RGB")
    with pytest.raises(SystemExit):
        package(["--from", first, second, "--name", "x", "--out-dir", str(tmp_path)])
    assert "rgb normalises its input differently from bgr (['channel_order'])" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        package(["--from", first, first, "--name", "x", "--out-dir", str(tmp_path), "--average", first])
    assert "--average takes checkpoints of one model" in capsys.readouterr().err


@pytest.mark.slow
def test_saved_model_of_an_ensemble_serves_the_mean_map(ensemble, tmp_path):
    settings = {**PREPROCESS, "size": None}
    path = export_saved_model(ensemble, settings, tmp_path / "served", version=1)
    served = tf.saved_model.load(str(path)).signatures["serving_float"]
    rgb = np.random.default_rng(7).uniform(0, 255, (1, 64, 96, 3)).astype(np.float32)
    got = served(images=tf.constant(rgb))["probability"].numpy()
    normalised = pre.normalize(rgb, PREPROCESS["mean"], PREPROCESS["std"], PREPROCESS["channel_order"])
    assert_maps_match(got, np.asarray(ensemble(normalised, training=False)))
