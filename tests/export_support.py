"""Shared by the export tests: a tiny DBNet whose maps are worth comparing, and its Keras reference output."""
import keras
import numpy as np

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
    for variable in model.weights:
        if variable.path.endswith("kernel"):
            fan_in = np.prod(variable.shape[:-1])
            variable.assign(rng.normal(0.0, np.sqrt(2.0 / fan_in), variable.shape).astype(np.float32))
    images = rng.normal(size=(2, 64, 96, 3)).astype(np.float32)
    logits = np.asarray(model(images, return_maps=True)["logits"])
    deconv = model.head.probability.deconv2
    bias = deconv.bias.numpy()
    scale = 1.0 / (logits - bias).std()
    deconv.kernel.assign(deconv.kernel.numpy() * scale)
    deconv.bias.assign(bias - scale * (logits - bias).mean())
    return model


def keras_reference(model, images, settings):
    """Normalise, pad to multiples of 32 with 0 (by hand), run Keras, crop back."""
    n, h, w, _ = images.shape
    padded = np.zeros((n, -(-h // 32) * 32, -(-w // 32) * 32, 3), np.float32)
    padded[:, :h, :w] = pre.normalize(images, settings["mean"], settings["std"], settings["channel_order"])
    return np.asarray(model(padded, training=False))[:, :h, :w]
