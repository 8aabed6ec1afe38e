"""SavedModel export: TF Serving layout, both signatures vs the Keras model, in-graph preprocessing vs
db_tf.preprocess / image_io, bad input, saved_model_cli, and a REST / gRPC round trip through db_tf.serving
against a stand-in server that follows TF Serving's documented request / response formats (TF Serving
itself cannot be installed here)."""
import re
import threading
from concurrent import futures
from http.server import ThreadingHTTPServer

import cv2
import numpy as np
import pytest
import tensorflow as tf
from export_support import StandInServing, keras_reference, tiny_model
from tolerances import assert_maps_match, assert_same_detections

from db_tf import preprocess as pre
from db_tf.data.image_io import decode_image
from db_tf.detector import TextDetector
from db_tf.export import graph_preprocess as gp
from db_tf.export.saved_model import export_saved_model, read_metadata
from db_tf.export.signatures import encoded_images
from db_tf.serving import ServingClient, ServingError

pytestmark = pytest.mark.slow   # not in the fast subset (python -m pytest -m "not slow")

# BGR and a non-ImageNet mean/std, so a missing swap or a wrong constant shows; small sizes for speed
SETTINGS = {"channel_order": "BGR", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "short_side": 64,
            "max_side": 128, "size": None}


def png(rgb):
    return cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))[1].tobytes()


def keras_maps(model, rgb_images):
    """What TextDetector feeds the network (numpy path): resize, normalise, pad, one forward pass."""
    prepared = [pre.normalize(pre.resize_for_inference(im, SETTINGS["short_side"], SETTINGS["max_side"])[0],
                              SETTINGS["mean"], SETTINGS["std"], SETTINGS["channel_order"]) for im in rgb_images]
    batch, sizes = pre.pad_batch(prepared)
    return np.asarray(model(batch, training=False)), sizes


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("serving") / "dbnet"
    path = export_saved_model(model, SETTINGS, root, version=3, metadata={"name": "tiny", "postprocess": {}})
    return path, tf.saved_model.load(str(path))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(1)
    # already at the policy's size (short side 64, long side a multiple of 32 <= 128): no resampling,
    # so the bytes signature must equal the numpy path to float rounding
    return [cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (5, 5), 0)
            for shape in [(64, 96, 3), (128, 64, 3), (64, 64, 3)]]


# ------------------------------------------------------------------------------------------- layout
def test_tf_serving_layout_metadata_and_no_overwrite(exported, model):
    path, _ = exported
    assert path.name == "3" and (path / "saved_model.pb").is_file() and (path / "variables").is_dir()
    assert [p.name for p in path.parent.iterdir()] == ["3"]  # the staging folder is gone
    assert read_metadata(path)["name"] == "tiny"
    with pytest.raises(FileExistsError, match="--version"):
        export_saved_model(model, SETTINGS, path.parent, version=3)


def test_saved_model_cli_lists_both_signatures(exported, capsys):
    # `saved_model_cli show --dir D --all` prints what its function _show_all(D) prints; calling it here
    # saves starting a second TensorFlow process
    from tensorflow.python.tools import saved_model_cli

    saved_model_cli._show_all(str(exported[0]))
    text = capsys.readouterr().out
    for signature, inputs, outputs in [("serving_default", {"image_bytes": "DT_STRING"},
                                        {"probability": "DT_FLOAT", "original_size": "DT_INT32",
                                         "resized_size": "DT_INT32"}),
                                       ("serving_float", {"images": "DT_FLOAT"}, {"probability": "DT_FLOAT"})]:
        block = text.split(f"signature_def['{signature}']:", 1)[1].split("signature_def[", 1)[0]
        given, returned = block.split("The given SavedModel SignatureDef contains the following output(s):")
        for name, dtype in inputs.items():
            assert re.search(rf"inputs\['{name}'\] tensor_info:\s+dtype: {dtype}", given), block
        for name, dtype in outputs.items():
            assert re.search(rf"outputs\['{name}'\] tensor_info:\s+dtype: {dtype}", returned), block


def test_graph_mode_loader_runs_both_signatures(exported, images):
    """TF Serving loads with the C++ SavedModel loader: MetaGraph + restore op + Session.run by tensor
    names. tf.compat.v1's loader takes that same path (unlike tf.saved_model.load's object graph)."""
    path, loaded = exported
    encoded = [png(im) for im in images]
    floats = np.random.default_rng(9).uniform(0, 255, (1, 64, 96, 3)).astype(np.float32)
    references = {"serving_default": loaded.signatures["serving_default"](image_bytes=tf.constant(encoded)),
                  "serving_float": loaded.signatures["serving_float"](images=tf.constant(floats))}
    feeds = {"serving_default": {"image_bytes": encoded}, "serving_float": {"images": floats}}
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(path))
        for name, feed in feeds.items():
            reference = references[name]
            signature = meta_graph.signature_def[name]
            outputs = session.run({k: v.name for k, v in signature.outputs.items()},
                                  {signature.inputs[k].name: v for k, v in feed.items()})
            assert sorted(outputs) == sorted(reference)
            for key, value in outputs.items():
                np.testing.assert_allclose(value, reference[key].numpy(), atol=1e-5)


# ------------------------------------------------------------------------------------------ signatures
def test_float_signature_matches_keras_at_any_size(exported, model):
    _, loaded = exported
    rng = np.random.default_rng(2)
    for shape in [(2, 64, 96, 3), (1, 50, 70, 3)]:
        images = rng.uniform(0, 255, shape).astype(np.float32)
        got = loaded.signatures["serving_float"](images=tf.constant(images))["probability"].numpy()
        # the reference pads by hand to multiples of 32 with 0 after normalisation, then crops
        normalized = pre.normalize(images, SETTINGS["mean"], SETTINGS["std"], "BGR")
        h, w = shape[1:3]
        padded = np.zeros((shape[0], -(-h // 32) * 32, -(-w // 32) * 32, 3), np.float32)
        padded[:, :h, :w] = normalized
        expected = np.asarray(model(padded, training=False))[:, :h, :w]
        assert got.shape == (shape[0], h, w, 1)
        assert expected.std() > 0.05  # the maps vary: a 1e-4 agreement means something
        assert_maps_match(got, expected)


def test_bytes_signature_matches_keras_on_a_batch_of_different_sizes(exported, model, images):
    _, loaded = exported
    out = loaded.signatures["serving_default"](image_bytes=tf.constant([png(im) for im in images]))
    expected, sizes = keras_maps(model, images)
    assert out["original_size"].numpy().tolist() == [list(im.shape[:2]) for im in images]
    assert out["resized_size"].numpy().tolist() == [list(s) for s in sizes]
    assert out["probability"].shape == expected.shape == (3, 128, 96, 1)
    assert_maps_match(out["probability"].numpy(), expected)


def test_exports_for_split_by_threshold_serve_the_threshold_map(model, images, tmp_path):
    from db_tf.export import export_metadata

    settings = {**SETTINGS, "split_by_threshold": True}
    path = export_saved_model(model, settings, tmp_path / "split", metadata=export_metadata(settings, name="t"))
    loaded = tf.saved_model.load(str(path))
    out = loaded.signatures["serving_default"](image_bytes=tf.constant([png(im) for im in images]))
    prepared = [pre.normalize(pre.resize_for_inference(im, SETTINGS["short_side"], SETTINGS["max_side"])[0],
                              SETTINGS["mean"], SETTINGS["std"], SETTINGS["channel_order"]) for im in images]
    batch, _ = pre.pad_batch(prepared)
    expected = model(batch, training=False, return_maps=True)
    for key in ("probability", "threshold"):
        assert_maps_match(out[key].numpy(), expected[key].numpy(), what=key)
    floats = np.random.default_rng(4).uniform(0, 255, (1, 50, 70, 3)).astype(np.float32)
    served = loaded.signatures["serving_float"](images=tf.constant(floats))
    assert sorted(served) == ["probability", "threshold"] and served["threshold"].shape == (1, 50, 70, 1)
    meta = read_metadata(path)
    assert meta["postprocess"]["split_by_threshold"] is True and "threshold" in meta["outputs"]
    assert "threshold" not in export_metadata(SETTINGS)["outputs"]   # plain exports stay as they were


def test_bytes_signature_resizes_by_the_policy(exported, model):
    _, loaded = exported
    rng = np.random.default_rng(3)
    batch = [cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (5, 5), 0)
             for shape in [(40, 50, 3), (300, 90, 3), (45, 700, 3)]]
    out = loaded.signatures["serving_default"](image_bytes=tf.constant([png(im) for im in batch]))
    expected, sizes = keras_maps(model, batch)
    assert out["resized_size"].numpy().tolist() == [list(s) for s in sizes]
    # OpenCV's fixed-point bilinear weights put some pixels one level off (see the resize test below),
    # so the maps agree closely, not to float rounding
    difference = np.abs(out["probability"].numpy() - expected)
    assert difference.mean() < 2e-3 and difference.max() < 0.1


def test_a_fixed_network_size_is_rounded_as_the_numpy_policy(model, images):
    serve = tf.function(encoded_images(model, {**SETTINGS, "size": (80, 112)}))
    out = serve(tf.constant([png(im) for im in images[:2]]))
    expected = pre.inference_size(1, 1, size=(80, 112))  # multiples of 32 nearest to 80 and 112: (64, 128)
    assert out["resized_size"].numpy().tolist() == [list(expected)] * 2
    assert out["probability"].shape == (2, *expected, 1)


def test_resize_policy_sizes_equal_the_numpy_policy():
    rng = np.random.default_rng(4)
    cases = [(720, 1280, 736, 2560), (1, 1, 736, 2560), (23, 10000, 736, 2560), (736, 736, 736, 0),
             (641, 479, 640, 1000)] + [(int(h), int(w), int(s), int(m)) for h, w, s, m in zip(
                 rng.integers(1, 5000, 200), rng.integers(1, 5000, 200), rng.choice([64, 320, 640, 736], 200),
                 rng.choice([0, 100, 1280, 2560], 200))]
    heights, widths, shorts, limits = (np.array(c) for c in zip(*cases))
    for short, limit in {(s, m) for _, _, s, m in cases}:
        pick = (shorts == short) & (limits == limit)
        got = gp.inference_size(heights[pick], widths[pick], short, limit).numpy().T  # vectorised over images
        expected = [pre.inference_size(int(h), int(w), short, limit) for h, w in zip(heights[pick], widths[pick])]
        assert got.tolist() == [list(e) for e in expected], (short, limit)


@pytest.mark.parametrize("shape,size", [((50, 70, 3), (64, 96)), ((300, 200, 3), (96, 64)), ((64, 96, 3), (64, 96))])
def test_resize_pixels_within_one_level_of_opencv(shape, size):
    image = cv2.GaussianBlur(np.random.default_rng(5).integers(0, 256, shape, dtype=np.uint8), (5, 5), 0)
    expected = cv2.resize(image, size[::-1]).astype(np.float32)  # what resize_for_inference does
    got = gp.resize(image, size).numpy()
    difference = np.abs(got - expected)
    assert got.shape == expected.shape and difference.max() <= 1.0 and difference.mean() < 0.2
    if size == shape[:2]:
        assert difference.max() == 0


@pytest.mark.parametrize("kind", ["jpeg", "png_grey", "png_rgba", "png_16bit", "bmp"])
def test_in_graph_decoding_equals_image_io(kind, tmp_path):
    rng = np.random.default_rng(6)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8), (3, 3), 0)
    bgr = rgb[..., ::-1]
    stored = {"jpeg": (".jpg", bgr), "png_grey": (".png", rgb[..., 0]),
              "png_rgba": (".png", np.dstack([bgr, rgb[..., :1]])),
              "png_16bit": (".png", bgr.astype(np.uint16) * 257 + 3), "bmp": (".bmp", bgr)}[kind]
    data = cv2.imencode(*stored)[1].tobytes()
    np.testing.assert_array_equal(gp.decode(tf.constant(data), 0).numpy(), decode_image(data))


def test_bad_bytes_give_a_clear_error_and_the_model_keeps_serving(exported, images):
    _, loaded = exported
    serve = loaded.signatures["serving_default"]
    good = png(images[0])
    jpeg = cv2.imencode(".jpg", images[1])[1].tobytes()
    truncated = r"image_bytes element\] \[{}\] \[is a truncated image file"
    for batch, message in [([good, b"GET / HTTP/1.1"], r"image_bytes element\] \[1\] \[is empty or not an image"),
                           ([b"", good], r"image_bytes element\] \[0\] \[is empty or not an image"),
                           ([good, good[: len(good) // 2]], truncated.format(1)),
                           ([jpeg[: len(jpeg) - 100], good], truncated.format(0)),
                           ([good, jpeg, jpeg[:-2]], truncated.format(2)),
                           ([], r"image_bytes is empty")]:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            serve(image_bytes=tf.constant(batch, dtype=tf.string))
    assert serve(image_bytes=tf.constant([good]))["probability"].shape == (1, 64, 96, 1)
    # trailing bytes after the end marker (as some cameras write) are still a complete file
    assert serve(image_bytes=tf.constant([jpeg + b"\0" * 5000]))["probability"].shape == (1, 128, 64, 1)


# ------------------------------------------------------------------------- client against a stand-in
@pytest.fixture(scope="module")
def rest_server(exported):
    StandInServing.signatures = exported[1].signatures
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInServing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_rest_client_gives_the_detectors_maps_and_detections(rest_server, model, images, tmp_path):
    paths = []
    for index, image in enumerate(images):
        paths.append(tmp_path / f"im{index}.png")
        paths[-1].write_bytes(png(image))
    settings = {"thresh": 0.4, "box_thresh": 0.4}  # the random model's maps then hold a few dozen boxes
    client = ServingClient(rest_server, model="dbnet", version=3, **settings)
    served = client.predict(paths)
    detector = TextDetector(model=model, **{k: v for k, v in SETTINGS.items()}, **settings)
    reference = detector.predict_maps(images)
    for maps, ref, image in zip(served, reference, images):
        assert maps.original_size == image.shape[:2] and maps.probability.shape == ref["probability"].shape
        assert_maps_match(maps.probability, ref["probability"])
    results, expected = client.detect(paths), detector.detect(images)
    assert sum(len(r) for r in expected) > 0
    for got, want in zip(results, expected):
        assert_same_detections((got.polygons, got.scores), (want.polygons, want.scores), settings["box_thresh"])


def test_rest_client_reports_server_errors_clearly(rest_server, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    with pytest.raises(ServingError, match=r"(?s)HTTP 400.*image_bytes element\] \[0\]"):
        ServingClient(rest_server).predict([bad])
    with pytest.raises(ServingError, match="cannot reach TF Serving"):
        ServingClient("127.0.0.1:9", timeout=5).predict([bad])


def test_grpc_client_round_trip(exported, images, model):
    grpc = pytest.importorskip("grpc")
    apis = pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2_grpc")
    from tensorflow_serving.apis import predict_pb2

    signatures = exported[1].signatures

    class StandInPrediction(apis.PredictionServiceServicer):
        def Predict(self, request, context):  # noqa: N802 (the proto's naming)
            tensors = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
            try:
                outputs = signatures[request.model_spec.signature_name](**{k: tf.constant(v)
                                                                          for k, v in tensors.items()})
            except tf.errors.InvalidArgumentError as err:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, err.message)
            response = predict_pb2.PredictResponse()
            for name, value in outputs.items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2),
                         options=[("grpc.max_send_message_length", 64 << 20)])
    apis.add_PredictionServiceServicer_to_server(StandInPrediction(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        client = ServingClient(f"127.0.0.1:{port}", protocol="grpc")
        served = client.predict([png(im) for im in images])
        expected, sizes = keras_maps(model, images)
        for maps, ref, size in zip(served, expected, sizes):
            assert maps.resized_size == tuple(size)
            assert_maps_match(maps.probability, ref[: size[0], : size[1], 0])
        with pytest.raises(ServingError, match="not an image"):
            client.predict([b"nonsense"])
    finally:
        server.stop(None)


# ------------------------------------------------------------------------- the tolerance still catches bugs
@pytest.mark.slow
def test_broken_exports_are_caught(model, tmp_path, monkeypatch):
    """Exports with a wrong normalisation or a wrong padding / crop differ from Keras by far more than
    MAP_ATOL (tests/tolerances.py), so every parity test above would fail on them. Two real SavedModels (the
    right settings and RGB for BGR); the other bugs through the function those exports serve (no re-export)."""
    from tolerances import MAP_ATOL

    from db_tf.export import signatures

    images = np.random.default_rng(2).uniform(0, 255, (1, 50, 70, 3)).astype(np.float32)
    expected = keras_reference(model, images, SETTINGS)

    def exported(settings):
        path = export_saved_model(model, settings, tmp_path / str(len(list(tmp_path.iterdir()))), version=1)
        return tf.saved_model.load(str(path)).signatures["serving_float"](images=tf.constant(images))["probability"]

    def served(settings):
        return tf.function(signatures.float_images(model, settings))(tf.constant(images))["probability"]

    assert_maps_match(exported(SETTINGS).numpy(), expected)   # the real export passes
    broken = [exported({**SETTINGS, "channel_order": "RGB"}).numpy()]
    broken += [served({**SETTINGS, **bug}).numpy() for bug in (
        {"mean": [0.52, 0.4, 0.3]}, {"mean": list(pre.IMAGENET_MEAN)}, {"std": [0.25, 0.2, 0.3]})]
    # padding on the wrong side (top / left) and cropping the wrong corner: same shape, other values
    pad = gp.pad_to_multiple
    monkeypatch.setattr(signatures.gp, "pad_to_multiple", lambda x: tf.reverse(pad(tf.reverse(x, [1, 2])), [1, 2]))
    broken.append(served(SETTINGS).numpy())
    for got in broken:
        with pytest.raises(AssertionError, match="max .difference"):
            assert_maps_match(got, expected)
    assert min(float(np.abs(got - expected).max()) for got in broken) > 10 * MAP_ATOL
    # a map left uncropped (padded size) fails on its shape
    with pytest.raises(AssertionError, match="shape"):
        assert_maps_match(np.zeros((1, 64, 96, 1)), expected)
