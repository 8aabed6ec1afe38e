"""Shared by the export tests: a tiny DBNet whose maps are worth comparing, its Keras reference output, and a
stand-in for TF Serving's REST API."""
import base64
import json
import re
from http.server import BaseHTTPRequestHandler

import keras
import numpy as np
import tensorflow as tf

from db_tf import preprocess as pre
from db_tf.models import DBNet


def tiny_model(seed=0):
    """A small random R18 DBNet with distinct weights whose probabilities spread over (0, 1).

    Kernels are drawn here (He-normal, one draw per layer) rather than left to the builders, and the
    last deconvolution is rescaled so the logits have mean 0 and spread 1: a random ResNet in inference
    mode gives huge logits (every probability 0 or 1), where a parity check would see nothing.
    """
    keras.utils.set_random_seed(seed)
    model = DBNet(backbone="resnet18", inner_channels=64)
    rng = np.random.default_rng(seed)
    draw_he_normal_kernels(model, rng)
    spread_logits(model, rng.normal(size=(2, 64, 96, 3)).astype(np.float32))
    return model


def draw_he_normal_kernels(model, rng):
    """Every kernel of ``model`` drawn He-normal from ``rng`` (one draw per layer, in weight order)."""
    for variable in model.weights:
        if variable.path.endswith("kernel"):
            fan_in = np.prod(variable.shape[:-1])
            variable.assign(rng.normal(0.0, np.sqrt(2.0 / fan_in), variable.shape).astype(np.float32))


def spread_logits(model, images):
    """Rescale the probability head's last deconvolution so the logits on ``images`` have mean 0 and
    spread 1 (probabilities spread over (0, 1))."""
    logits = np.asarray(model(images, return_maps=True)["logits"])
    deconv = model.head.probability.deconv2
    bias = deconv.bias.numpy()
    scale = 1.0 / (logits - bias).std()
    deconv.kernel.assign(deconv.kernel.numpy() * scale)
    deconv.bias.assign(bias - scale * (logits - bias).mean())


def keras_reference(model, images, settings):
    """Normalise, pad to multiples of 32 with 0 (by hand), run Keras, crop back."""
    n, h, w, _ = images.shape
    padded = np.zeros((n, -(-h // 32) * 32, -(-w // 32) * 32, 3), np.float32)
    padded[:, :h, :w] = pre.normalize(images, settings["mean"], settings["std"], settings["channel_order"])
    return np.asarray(model(padded, training=False))[:, :h, :w]


class StandInServing(BaseHTTPRequestHandler):
    """TF Serving's REST predict API as documented, for the client tests: row ("instances") or columnar
    ("inputs") requests, {"b64": ...} values base64-decoded, scalar settings as float32, errors as HTTP 400
    {"error": message} (TF Serving's own wording for a signature the model lacks). Set ``signatures`` to a
    loaded SavedModel's; ``asked`` records the signature names requested."""
    signatures = None
    asked = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        match = re.fullmatch(r"/v1/models/(\w+)(?:/versions/(\d+))?:predict", self.path)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if match is None:
            return self._answer(404, {"error": f"no such endpoint {self.path}"})
        name = body.get("signature_name", "serving_default")
        self.asked.append(name)
        if name not in self.signatures:
            return self._answer(400, {"error": f'Serving signature name: "{name}" not found in signature def'})
        if "instances" in body:
            inputs = {key: [row[key] for row in body["instances"]] for key in body["instances"][0]}
        else:
            inputs = body["inputs"]
        try:
            tensors = {key: _tensor(key, value) for key, value in inputs.items()}
            outputs = {key: value.numpy().tolist() for key, value in self.signatures[name](**tensors).items()}
        except tf.errors.InvalidArgumentError as err:
            return self._answer(400, {"error": err.message})
        if "instances" in body:
            count = len(next(iter(outputs.values())))
            return self._answer(200, {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(count)]})
        return self._answer(200, {"outputs": outputs})

    def _answer(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _tensor(name, value):
    if name == "image_bytes":
        return tf.constant([base64.b64decode(v["b64"]) if isinstance(v, dict) else v for v in value])
    return tf.constant(value, tf.float32)
