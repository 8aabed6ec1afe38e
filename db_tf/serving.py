"""Client helper for a db-tf SavedModel served by TensorFlow Serving (export.py --format saved_model).

    from db_tf.serving import ServingClient
    client = ServingClient("localhost:8501", model="dbnet")            # REST; protocol="grpc" with port 8500
    for result in client.detect(["a.jpg", "b.png"]):                    # one Detections per image
        print(result.polygons, result.scores)

Exports that have the "boxes" signature (db-tf exports from this version on) compute the boxes in the
graph: ``detect`` then asks for them (a few kB per image instead of the maps) unless post-processing
settings were given, which the client applies to the maps with db_tf.postprocess as before;
``in_graph=True`` always asks the graph ("boxes_tuned" with ``thresh`` / ``box_thresh`` / ``unclip_ratio``),
``in_graph=False`` never. An older export without the signature is detected from the server's answer.

The maps request carries the encoded image files (signature "serving_default", input ``image_bytes``; TF
Serving's REST API base64-decodes ``{"b64": ...}`` values). The response has, per image, the probability
map at network resolution (padded to the batch's largest image), ``original_size`` and ``resized_size``;
the client crops the map to ``resized_size`` and runs db_tf.postprocess with ``dest_size=original_size``,
exactly what TextDetector does after its own forward pass, so the detections are the same. A model exported
with ``split_by_threshold`` also serves its ``threshold`` map, which that post-processing step needs.

REST needs only numpy / OpenCV / pyclipper (no TensorFlow). gRPC needs ``grpcio`` and the
``tensorflow-serving-api`` protos (``pip install --no-deps tensorflow-serving-api==2.21.0``: the package
depends on ``tensorflow``, which would clash with ``tensorflow-cpu``); it sends the same tensors in
binary form, about 4x smaller and much faster to parse than REST's JSON numbers.
"""
import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from db_tf import postprocess as post
from db_tf.detector import DEFAULTS, POSTPROCESS_KEYS, Detections, postprocess_arguments

SIGNATURE = "serving_default"
BOXES_SIGNATURE = "boxes"
TUNED_BOXES_SIGNATURE = "boxes_tuned"
TUNABLE = ("thresh", "box_thresh", "unclip_ratio")  # the inputs of "boxes_tuned"
BOX_OUTPUTS = ("boxes", "scores", "num_boxes", "original_size")
INPUT_NAME = "image_bytes"
OUTPUT_NAMES = ("probability", "original_size", "resized_size")
OPTIONAL_OUTPUTS = ("threshold",)  # served only by exports made with split_by_threshold
GRPC_MAX_MESSAGE = 512 * 1024 * 1024  # a 736x1280 map is 3.8 MB; gRPC's default limit is 4 MB per message


class ServingError(RuntimeError):
    """TF Serving could not be reached, refused the request, or answered something unexpected."""


@dataclass
class ServedMaps:
    """One image's part of a response: ``probability`` (h, w) float32 over the valid (unpadded) region,
    and the (height, width) of the original image and of the network input it was resized to; ``threshold``
    likewise when the export serves it."""
    probability: np.ndarray
    original_size: tuple
    resized_size: tuple
    threshold: np.ndarray = None


# ------------------------------------------------------------------------------------------- requests
def read_encoded(image):
    """An image file path or already encoded bytes -> bytes (files are sent as they are, not re-encoded)."""
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    from db_tf.data.image_io import ImageReadError  # a ValueError naming the file, as everywhere in db-tf

    path = Path(image)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except OSError as err:
        raise ImageReadError(path, f"cannot read file ({err.strerror or err})") from None
    if not data:
        raise ImageReadError(path, "file is empty")
    return data


def rest_request(images, signature_name=SIGNATURE):
    """The JSON body of a REST :predict call (row format, one instance per image)."""
    instances = [{INPUT_NAME: {"b64": base64.b64encode(read_encoded(im)).decode("ascii")}} for im in images]
    if not instances:
        raise ValueError("no images to send")
    return {"signature_name": signature_name, "instances": instances}


def rest_boxes_request(images, tuned=None):
    """The JSON body of a REST :predict call to "boxes" (row format) or, with ``tuned`` = {thresh,
    box_thresh, unclip_ratio}, to "boxes_tuned" (columnar format: the settings are scalars, not rows)."""
    if not tuned:
        return rest_request(images, BOXES_SIGNATURE)
    files = rest_request(images)["instances"]
    return {"signature_name": TUNED_BOXES_SIGNATURE,
            "inputs": {INPUT_NAME: [f[INPUT_NAME] for f in files], **{k: float(tuned[k]) for k in TUNABLE}}}


def rest_url(host="localhost:8501", model="dbnet", version=None):
    """TF Serving's REST predict URL; ``host`` may include a scheme ("https://...")."""
    base = host if "://" in host else f"http://{host}"
    versioned = f"/versions/{int(version)}" if version is not None else ""
    return f"{base.rstrip('/')}/v1/models/{model}{versioned}:predict"


def grpc_request(images, model="dbnet", version=None, signature_name=SIGNATURE, tuned=None):
    """A tensorflow_serving PredictRequest with the encoded images as a DT_STRING tensor (and, with
    ``tuned``, the "boxes_tuned" settings as float32 scalars)."""
    predict_pb2, _ = _serving_protos()
    import tensorflow as tf

    encoded = [read_encoded(im) for im in images]
    if not encoded:
        raise ValueError("no images to send")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    request.inputs[INPUT_NAME].CopyFrom(tf.make_tensor_proto(encoded, dtype=tf.string, shape=[len(encoded)]))
    for key, value in (tuned or {}).items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(float(value), dtype=tf.float32))
    return request


# ------------------------------------------------------------------------------------------ responses
def parse_rest_response(body):
    """A REST :predict response (dict or JSON text; row or columnar format) -> list of ServedMaps."""
    body = _rest_body(body)
    if "predictions" in body:  # row format: one object per image
        rows = body["predictions"]
        if rows and not isinstance(rows[0], dict):
            raise ServingError("the response has no named outputs: was the model exported by db-tf's export.py?")
        served = OUTPUT_NAMES + tuple(name for name in OPTIONAL_OUTPUTS if any(name in row for row in rows))
        outputs = {name: [row.get(name) for row in rows] for name in served}
    elif "outputs" in body:  # columnar format
        outputs = body["outputs"]
    else:
        raise ServingError(f"unexpected TF Serving response with keys {sorted(body)}")
    return _split(outputs)


def parse_boxes(outputs):
    """Outputs of the "boxes" signature ({name: array-like}, REST columnar or gRPC) -> list of Detections."""
    missing = [name for name in BOX_OUTPUTS if name not in outputs]
    if missing:
        raise ServingError(f"the response lacks outputs {missing}: use the boxes signature of a db-tf export")
    counts = np.asarray(outputs["num_boxes"], np.int64).reshape(-1)
    if not len(counts):
        return []
    sizes = np.asarray(outputs["original_size"], np.int64).reshape(-1, 2)
    boxes = np.asarray(outputs["boxes"], np.float32).reshape(len(counts), -1, 4, 2)
    scores = np.asarray(outputs["scores"], np.float32).reshape(len(counts), -1)
    return [Detections(list(b[:n]), s[:n].copy(), (int(size[0]), int(size[1])))
            for b, s, n, size in zip(boxes, scores, counts, sizes)]


def parse_rest_boxes(body):
    """A REST :predict response of "boxes" / "boxes_tuned" (row or columnar) -> list of Detections."""
    body = _rest_body(body)
    if "predictions" in body:  # row format: one object per image
        rows = body["predictions"]
        return parse_boxes({name: [row[name] for row in rows] for name in BOX_OUTPUTS
                            if all(isinstance(row, dict) and name in row for row in rows)})
    if "outputs" in body:
        return parse_boxes(body["outputs"])
    raise ServingError(f"unexpected TF Serving response with keys {sorted(body)}")


def _rest_body(body):
    """A REST :predict response as a dict (parsed from JSON text); ServingError for TF Serving's error answer."""
    if isinstance(body, (str, bytes)):
        body = json.loads(body)
    if "error" in body:
        raise ServingError(f"TF Serving error: {body['error']}")
    return body


def parse_grpc_response(response):
    """A PredictResponse -> list of ServedMaps."""
    import tensorflow as tf

    return _split({name: tf.make_ndarray(response.outputs[name]) for name in OUTPUT_NAMES + OPTIONAL_OUTPUTS
                   if name in response.outputs})


def _split(outputs):
    missing = [name for name in OUTPUT_NAMES if name not in outputs or outputs[name] is None
               or any(value is None for value in outputs[name])]
    if missing:
        raise ServingError(f"the response lacks outputs {missing}: use the serving_default signature of a "
                           f"db-tf export")
    probability = np.asarray(outputs["probability"], np.float32)
    original = np.asarray(outputs["original_size"], np.int64).reshape(-1, 2)
    resized = np.asarray(outputs["resized_size"], np.int64).reshape(-1, 2)
    if probability.ndim == 4:
        probability = probability[..., 0]
    if probability.ndim != 3 or not len(probability) == len(original) == len(resized):
        raise ServingError(f"inconsistent outputs: probability {probability.shape}, original_size "
                           f"{original.shape}, resized_size {resized.shape}")
    threshold = outputs.get("threshold")
    threshold = [None] * len(probability) if threshold is None else np.asarray(threshold, np.float32).reshape(
        probability.shape)
    return [ServedMaps(prob[:rh, :rw], (int(oh), int(ow)), (int(rh), int(rw)), None if t is None else t[:rh, :rw])
            for prob, (oh, ow), (rh, rw), t in zip(probability, original, resized, threshold)]


def _check_settings(settings):
    unknown = set(settings) - set(POSTPROCESS_KEYS)
    if unknown:
        raise TypeError(f"unknown post-processing settings {sorted(unknown)}; known: {POSTPROCESS_KEYS}")


def detections(maps, **settings):
    """Detections in original-image coordinates from one ServedMaps (settings as TextDetector's)."""
    params = postprocess_arguments({key: settings.get(key, DEFAULTS[key]) for key in POSTPROCESS_KEYS},
                                   maps.threshold)
    polygons, scores = post.postprocess(maps.probability, maps.original_size, **params)
    return Detections(polygons, scores, maps.original_size)


# --------------------------------------------------------------------------------------------- client
class ServingClient:
    """Send images to TF Serving, get db-tf Detections back.

    host: "localhost:8501" (REST) or "localhost:8500" (gRPC); model: the MODEL_NAME the server was
    started with; version: a fixed version, or None for the latest. Post-processing settings
    (``thresh``, ``box_thresh``, ``unclip_ratio``, ``polygon``, ...): when none are given, ``detect`` takes
    the boxes the graph computes with the model's shipped settings ("boxes" signature), or, for an export
    without it, runs db_tf.postprocess with TextDetector's defaults; given settings are applied by
    db_tf.postprocess to the served maps. in_graph: None (that choice), True (always the graph; settings
    limited to thresh / box_thresh / unclip_ratio, all three, sent to "boxes_tuned"), False (always maps).
    """

    def __init__(self, host="localhost:8501", model="dbnet", version=None, protocol="rest", timeout=60.0,
                 in_graph=None, **settings):
        if protocol not in ("rest", "grpc"):
            raise ValueError(f"protocol must be 'rest' or 'grpc', got {protocol!r}")
        if in_graph not in (None, True, False):
            raise ValueError(f"in_graph must be None, True or False, got {in_graph!r}")
        _check_settings(settings)
        self.host, self.model, self.version = host, model, version
        self.protocol, self.timeout, self.settings = protocol, float(timeout), settings
        self.in_graph = in_graph
        self._stub = None
        self._has_boxes = None  # unknown until the server answers a boxes request

    def predict(self, images):
        """The served maps of a list of images (paths or encoded bytes), in one request."""
        images = list(images)
        if self.protocol == "rest":
            return parse_rest_response(self._post(rest_request(images)))
        return parse_grpc_response(self._grpc_predict(grpc_request(images, self.model, self.version)))

    def predict_boxes(self, images, **tuned):
        """Detections computed in the graph ("boxes", or "boxes_tuned" with thresh / box_thresh /
        unclip_ratio), in one request."""
        images = list(images)
        if tuned and sorted(tuned) != sorted(TUNABLE):
            raise ValueError(f"in-graph boxes take all of {TUNABLE} or none of them, got {sorted(tuned)}")
        if self.protocol == "rest":
            return parse_rest_boxes(self._post(rest_boxes_request(images, tuned)))
        signature = TUNED_BOXES_SIGNATURE if tuned else BOXES_SIGNATURE
        response = self._grpc_predict(grpc_request(images, self.model, self.version, signature, tuned))
        import tensorflow as tf

        return parse_boxes({name: tf.make_ndarray(response.outputs[name]) for name in response.outputs})

    def detect(self, images, **overrides):
        """One Detections per image; ``overrides`` change post-processing settings for this call."""
        _check_settings(overrides)   # before the request: a misspelt setting must not be ignored
        settings = {**self.settings, **overrides}
        images = list(images)
        if self.in_graph or (self.in_graph is None and not settings and self._has_boxes is not False):
            try:
                results = self.predict_boxes(images, **settings)
                self._has_boxes = True
                return results
            except ServingError as err:
                if self.in_graph or not _lacks_signature(err):
                    raise
                self._has_boxes = False  # an export made before the boxes signature: maps it is
        return [detections(maps, **settings) for maps in self.predict(images)]

    def _grpc_predict(self, request):
        try:
            return self._grpc_stub().Predict(request, timeout=self.timeout)
        except Exception as exc:  # grpc.RpcError: its details() carry the server's message
            details = exc.details() if hasattr(exc, "details") else str(exc)
            raise ServingError(f"TF Serving at {self.host} (gRPC) failed: {details}") from None

    def _post(self, body):
        url = rest_url(self.host, self.model, self.version)
        request = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as err:  # TF Serving explains refusals in a JSON "error" field
            text = err.read().decode("utf-8", "replace")
            try:
                text = json.loads(text).get("error", text)
            except ValueError:
                pass
            raise ServingError(f"TF Serving at {url} answered HTTP {err.code}: {text}") from None
        except urllib.error.URLError as err:
            raise ServingError(f"cannot reach TF Serving at {url}: {err.reason}") from None

    def _grpc_stub(self):
        if self._stub is None:
            import grpc

            _, service = _serving_protos()
            options = [("grpc.max_receive_message_length", GRPC_MAX_MESSAGE),
                       ("grpc.max_send_message_length", GRPC_MAX_MESSAGE)]
            self._stub = service.PredictionServiceStub(grpc.insecure_channel(self.host, options=options))
        return self._stub


def _lacks_signature(error):
    """Whether TF Serving refused a request for a signature the model does not have (its message:
    'Serving signature name: "boxes" not found in signature def')."""
    return "not found in signature def" in str(error)


def _serving_protos():
    try:
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError:
        raise ImportError("gRPC needs grpcio and the TF Serving protos: pip install grpcio && "
                          "pip install --no-deps tensorflow-serving-api==2.21.0") from None
    return predict_pb2, prediction_service_pb2_grpc
