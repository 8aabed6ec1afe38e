"""Modulated deformable convolution (db_tf/models/deform_conv.py) against an independent numpy implementation,
torchvision.ops.deform_conv2d (when installed), plain convolution, finite differences, MhLiao/DB's
unstrided-offset quirk, the deformable ResNets, and SavedModel / ONNX export parity."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from torch_support import torch_or_skip

from db_tf.models.backbones import BACKBONES
from db_tf.models.backbones.resnet import STAGE_BLOCKS, STAGE_WIDTHS
from db_tf.models.deform_conv import ModulatedDeformConv2D, deform_conv2d

# float32 results agree with the float64 numpy reference to 2.7e-6 at worst (outputs up to ~9; the cases below
# with three seeds each, with and without oneDNN); 1e-5 leaves a margin for other CPUs' kernels.
ATOL = 1e-5


# ----------------------------------------------------------------------------- independent reference

def bilinear_zero_outside(image, y, x):
    """image (C, H, W) at real (y, x): 0 when y <= -1, y >= H, x <= -1 or x >= W; corners outside count 0."""
    channels, height, width = image.shape
    if y <= -1 or y >= height or x <= -1 or x >= width:
        return np.zeros(channels)
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    total = np.zeros(channels)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < height and 0 <= xx < width:
                total += wy * wx * image[:, yy, xx]
    return total


def deform_conv_numpy(x, offset, mask, weight, stride=1, dilation=1, groups=1):
    """NCHW loops as the definition reads: x (N, C, H, W), offset (N, 2GK, Ho, Wo), mask (N, GK, Ho, Wo),
    weight (F, C, kh, kw); padding dilation * (k - 1) // 2."""
    n, channels, height, width = x.shape
    filters, _, kh, kw = weight.shape
    pad_h, pad_w = dilation * (kh - 1) // 2, dilation * (kw - 1) // 2
    out_h, out_w = offset.shape[2:]
    per_group = channels // groups
    out = np.zeros((n, filters, out_h, out_w))
    for b in range(n):
        for oy in range(out_h):
            for ox in range(out_w):
                column = np.zeros((channels, kh, kw))
                for g in range(groups):
                    block = x[b, g * per_group:(g + 1) * per_group]
                    for i in range(kh):
                        for j in range(kw):
                            k = i * kw + j
                            dy = offset[b, 2 * (g * kh * kw + k), oy, ox]
                            dx = offset[b, 2 * (g * kh * kw + k) + 1, oy, ox]
                            y = oy * stride - pad_h + i * dilation + dy
                            xx = ox * stride - pad_w + j * dilation + dx
                            value = bilinear_zero_outside(block, y, xx)
                            column[g * per_group:(g + 1) * per_group, i, j] = value * mask[b, g * kh * kw + k, oy, ox]
                out[b, :, oy, ox] = np.tensordot(weight, column, axes=3)
    return out


def random_case(rng, n=2, channels=4, height=7, width=6, filters=3, k=3, stride=1, dilation=1, groups=1,
                offset_scale=2.0):
    pad = dilation * (k - 1) // 2
    out_h = (height + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    out_w = (width + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    x = rng.normal(size=(n, channels, height, width))
    weight = rng.normal(size=(filters, channels, k, k))
    # offsets of a few pixels send many taps across the border, where the zero padding rules matter
    offset = rng.normal(scale=offset_scale, size=(n, 2 * groups * k * k, out_h, out_w))
    mask = rng.uniform(size=(n, groups * k * k, out_h, out_w))
    return x, offset, mask, weight


def run_tf(x, offset, mask, weight, dtype=tf.float32, **kwargs):
    """deform_conv2d on NCHW / OIHW numpy arrays, result back in NCHW."""
    to = lambda a, axes: tf.constant(np.transpose(a, axes), dtype)
    out = deform_conv2d(to(x, (0, 2, 3, 1)), to(offset, (0, 2, 3, 1)), to(mask, (0, 2, 3, 1)),
                        to(weight, (2, 3, 1, 0)), **kwargs)
    return np.transpose(out.numpy(), (0, 3, 1, 2))


CASES = {"plain": {}, "stride2": {"stride": 2}, "groups2": {"groups": 2}, "dilation2": {"dilation": 2},
         "k5_stride2_groups2": {"k": 5, "stride": 2, "groups": 2}}


@pytest.mark.parametrize("case", CASES)
def test_matches_numpy_reference(case):
    options = CASES[case]
    x, offset, mask, weight = random_case(np.random.default_rng(len(case)), **options)
    kwargs = {"stride": options.get("stride", 1), "dilation": options.get("dilation", 1),
              "groups": options.get("groups", 1)}
    expected = deform_conv_numpy(x, offset, mask, weight, **kwargs)
    got = run_tf(x, offset, mask, weight, strides=kwargs["stride"], dilation=kwargs["dilation"],
                 groups=kwargs["groups"])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)


def test_reference_handles_the_border_cases_by_hand():
    """The numpy reference itself on hand-worked points: a half-pixel blend with the zero outside, exact
    borders, and a point past the image."""
    image = np.arange(1.0, 7.0).reshape(1, 2, 3)               # rows [1 2 3], [4 5 6]
    assert bilinear_zero_outside(image, 0.5, 1.0)[0] == pytest.approx(3.5)      # (2 + 5) / 2
    assert bilinear_zero_outside(image, -0.5, 0.0)[0] == pytest.approx(0.5)     # half of 1, half zero
    assert bilinear_zero_outside(image, 1.25, 2.5)[0] == pytest.approx(0.75 * 0.5 * 6)
    assert bilinear_zero_outside(image, -1.0, 1.0)[0] == 0.0
    assert bilinear_zero_outside(image, 0.0, 3.0)[0] == 0.0


@pytest.mark.parametrize("case", ["plain", "stride2", "groups2"])
def test_matches_torchvision(case):
    torch = torch_or_skip("torchvision.ops")
    from torchvision.ops import deform_conv2d as torchvision_deform_conv2d

    options = CASES[case]
    x, offset, mask, weight = (a.astype(np.float32) for a in random_case(np.random.default_rng(7), **options))
    stride = options.get("stride", 1)
    expected = torchvision_deform_conv2d(torch.from_numpy(x), torch.from_numpy(offset), torch.from_numpy(weight),
                                         stride=stride, padding=1, mask=torch.from_numpy(mask)).numpy()
    got = run_tf(x, offset, mask, weight, strides=stride, groups=options.get("groups", 1))
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("stride, dilation", [(1, 1), (2, 1), (1, 2)])
def test_zero_offsets_and_constant_mask_give_a_plain_convolution(stride, dilation):
    rng = np.random.default_rng(3)
    x, offset, mask, weight = random_case(rng, height=9, width=8, stride=stride, dilation=dilation)
    pad = dilation
    images = tf.constant(np.transpose(x, (0, 2, 3, 1)), tf.float32)
    kernel = tf.constant(np.transpose(weight, (2, 3, 1, 0)), tf.float32)
    plain = tf.nn.conv2d(tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]]), kernel, stride, "VALID",
                         dilations=dilation)
    zeros = tf.zeros(tuple(plain.shape[:3]) + (18,))
    got = deform_conv2d(images, zeros, tf.fill(tuple(plain.shape[:3]) + (9,), 0.3), kernel, stride,
                        dilation=dilation)
    np.testing.assert_allclose(got.numpy(), 0.3 * plain.numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(deform_conv2d(images, zeros, None, kernel, stride, dilation=dilation).numpy(),
                               plain.numpy(), atol=ATOL, rtol=0)


def test_fresh_layer_is_half_a_plain_convolution():
    """conv_offset starts at zero (official DB / mmcv init): offsets 0, masks sigmoid(0) = 0.5."""
    layer = ModulatedDeformConv2D(5, strides=2, name="dcn")
    images = tf.random.stateless_normal((2, 8, 10, 4), seed=(1, 2))
    out = layer(images)
    plain = tf.nn.conv2d(tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]]), layer.kernel, 2, "VALID")
    assert out.shape == (2, 4, 5, 5)
    assert not np.any(layer.conv_offset.kernel.numpy()) and not np.any(layer.conv_offset.bias.numpy())
    np.testing.assert_allclose(out.numpy(), 0.5 * plain.numpy(), atol=ATOL, rtol=0)


def test_gradients_match_finite_differences():
    """Directional derivatives of a random weighting of the output w.r.t. input, offsets, mask and kernel,
    float64, against central differences. Bilinear sampling is piecewise linear in the offsets, so they keep
    their fractional parts in [0.1, 0.9] (no kink within the step); the central difference is then exact up
    to rounding, for every argument."""
    rng = np.random.default_rng(11)
    x, offset, mask, weight = random_case(rng, n=2, channels=4, height=6, width=5, filters=3, groups=2)
    offset = np.floor(offset) + rng.uniform(0.1, 0.9, offset.shape)
    to = lambda a: tf.constant(np.transpose(a, (0, 2, 3, 1)), tf.float64)
    args = [to(x), to(offset), to(mask), tf.constant(np.transpose(weight, (2, 3, 1, 0)), tf.float64)]
    weighting = tf.constant(rng.normal(size=(2, 6, 5, 3)))

    def loss(values):
        return tf.reduce_sum(deform_conv2d(*values, groups=2) * weighting)

    with tf.GradientTape() as tape:
        tape.watch(args)
        value = loss(args)
    gradients = tape.gradient(value, args)
    step = 1e-5
    for index, gradient in enumerate(gradients):
        for _ in range(3):
            direction = tf.constant(rng.normal(size=args[index].shape))
            shifted = lambda sign: loss([a + sign * step * direction if i == index else a for i, a in enumerate(args)])
            numerical = (shifted(1.0) - shifted(-1.0)).numpy() / (2 * step)
            analytical = tf.reduce_sum(gradient * direction).numpy()
            assert abs(analytical) > 0.1
            assert analytical == pytest.approx(numerical, rel=1e-7, abs=1e-7)


def cuda_reading_of_unstrided_offsets(x, offset_mask, weight, stride):
    """What MhLiao/DB's CUDA op computes for its deformable bottleneck: offset_mask (N, 27, H, W) is the
    UNSTRIDED offset convolution's output; the kernel indexes the memory of offset_mask[b, :18] and of
    sigmoid(offset_mask[:, 18:])[b] as if they had the strided output's (Ho, Wo)."""
    n, _, height, width = x.shape
    out_h, out_w = (height - 1) // stride + 1, (width - 1) // stride + 1
    offsets, masks = [], []
    for b in range(n):
        memory = offset_mask[b, :18].reshape(-1)                       # contiguous from channel 0 of sample b
        offsets.append(memory[: 18 * out_h * out_w].reshape(18, out_h, out_w))
        mask_memory = (1 / (1 + np.exp(-offset_mask[b, 18:]))).reshape(-1)
        masks.append(mask_memory[: 9 * out_h * out_w].reshape(9, out_h, out_w))
    return deform_conv_numpy(x, np.stack(offsets), np.stack(masks), weight, stride=stride)


def test_unstrided_offsets_reproduce_the_official_cuda_reading():
    rng = np.random.default_rng(5)
    layer = ModulatedDeformConv2D(3, strides=2, unstrided_offsets=True, name="dcn")
    images = rng.normal(size=(2, 8, 6, 4)).astype(np.float32)
    layer(images)
    offset_kernel = rng.normal(scale=0.3, size=layer.conv_offset.kernel.shape).astype(np.float32)
    offset_bias = rng.normal(size=27).astype(np.float32)
    layer.conv_offset.kernel.assign(offset_kernel)
    layer.conv_offset.bias.assign(offset_bias)
    assert layer.conv_offset.strides == (1, 1)
    # the unstrided 3x3 offset convolution in numpy (padding 1), NCHW
    padded = np.pad(images.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    offset_mask = sum(padded[:, i:i + 8, j:j + 6] @ offset_kernel[i, j] for i in range(3) for j in range(3))
    offset_mask = np.transpose(offset_mask + offset_bias, (0, 3, 1, 2))
    weight = np.transpose(layer.kernel.numpy(), (3, 2, 0, 1))
    expected = cuda_reading_of_unstrided_offsets(np.transpose(images, (0, 3, 1, 2)), offset_mask, weight, 2)
    got = np.transpose(layer(images).numpy(), (0, 3, 1, 2))
    assert got.shape == expected.shape == (2, 3, 4, 3)
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)


def test_layer_config_round_trip():
    layer = ModulatedDeformConv2D(7, kernel_size=3, strides=2, deformable_groups=2, use_bias=True,
                                  unstrided_offsets=True, name="dcn")
    clone = ModulatedDeformConv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert keras.saving.get_registered_object("db_tf>ModulatedDeformConv2D") is ModulatedDeformConv2D


# ----------------------------------------------------------------------------- deformable ResNets

def deformable_layer_names(model):
    return sorted(layer.name for layer in model.layers if isinstance(layer, ModulatedDeformConv2D))


@pytest.mark.parametrize("depth", [18, pytest.param(50, marks=pytest.mark.slow)])
def test_deformable_resnets_put_dcn_in_conv2_of_stages_3_to_5(depth):
    name = f"deform_resnet{depth}"
    model = BACKBONES[name]()
    plain = BACKBONES[f"resnet{depth}"]()
    expected = sorted(f"layer{stage}.{index}.conv2" for stage in (2, 3, 4)
                      for index in range(STAGE_BLOCKS[depth][stage - 1]))
    assert deformable_layer_names(model) == expected
    # extra parameters: one 3x3 offset convolution (27 outputs + bias) per deformable conv2, whose input
    # has `planes` channels in both block types
    extra = sum(STAGE_BLOCKS[depth][stage - 1] * (9 * STAGE_WIDTHS[stage - 1] * 27 + 27)
                for stage in (2, 3, 4))
    assert model.count_params() == plain.count_params() + extra
    features = model(np.zeros((1, 64, 96, 3), np.float32))
    assert [tuple(f.shape) for f in features] == [tuple(f.shape) for f in plain(np.zeros((1, 64, 96, 3), np.float32))]
    strided = [layer for layer in model.layers if isinstance(layer, ModulatedDeformConv2D) and layer.strides != (1, 1)]
    if depth == 18:
        assert not strided   # basic blocks stride in conv1: DB and mmcv layouts coincide
    else:
        assert [layer.name for layer in strided] == ["layer2.0.conv2", "layer3.0.conv2", "layer4.0.conv2"]
        assert all(layer.unstrided_offsets for layer in strided)
        mmcv = BACKBONES["deform_resnet50_mmcv"]()
        assert not any(layer.unstrided_offsets for layer in mmcv.layers if isinstance(layer, ModulatedDeformConv2D))
        assert mmcv.get_layer("layer2.0.conv2").conv_offset.strides == (2, 2)


# ----------------------------------------------------------------------------- export parity

EXPORT_SETTINGS = {"channel_order": "RGB", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                   "short_side": 64, "max_side": 128}


@pytest.fixture(scope="module")
def deform_model():
    """A small random DBNet on deform_resnet18 whose offsets are far from zero and whose probabilities spread
    over (0, 1) (He-normal kernels; the last deconvolution rescaled as in export_support.tiny_model)."""
    from export_support import draw_he_normal_kernels, spread_logits

    from db_tf.models import DBNet

    keras.utils.set_random_seed(0)
    model = DBNet(backbone="deform_resnet18", inner_channels=64)
    rng = np.random.default_rng(0)
    draw_he_normal_kernels(model, rng)
    for layer in model.backbone.layers:
        if isinstance(layer, ModulatedDeformConv2D):   # offsets of about a pixel, masks spread over (0, 1)
            kernel = layer.conv_offset.kernel
            layer.conv_offset.kernel.assign(rng.normal(0, 0.3 / np.sqrt(np.prod(kernel.shape[:3])), kernel.shape))
            layer.conv_offset.bias.assign(rng.normal(0, 1.0, 27))
    spread_logits(model, rng.normal(size=(2, 64, 96, 3)).astype(np.float32))
    return model


@pytest.mark.slow
def test_saved_model_matches_keras(deform_model, tmp_path):
    from export_support import keras_reference

    from db_tf.export.saved_model import FLOAT_SIGNATURE, write_saved_model

    # the float signature only: the image-bytes one adds decoding around the same network (and 15 s)
    loaded = tf.saved_model.load(str(write_saved_model(deform_model, EXPORT_SETTINGS, tmp_path / "dcn",
                                                       signatures=(FLOAT_SIGNATURE,))))
    images = np.random.default_rng(1).uniform(0, 255, (2, 64, 96, 3)).astype(np.float32)
    expected = keras_reference(deform_model, images, EXPORT_SETTINGS)
    assert expected.std() > 0.05
    got = loaded.signatures[FLOAT_SIGNATURE](images=tf.constant(images))["probability"].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.slow
def test_onnx_matches_keras(tmp_path):
    """Both offset modes (strided, and the official unstrided one with its memory reading) through tf2onnx at
    the project's opset, dynamic height and width, in onnxruntime. Layer level: the DBNet around it exports
    as tests/test_export_onnx.py checks, and a whole deformable DBNet takes over a minute to convert."""
    tf2onnx = pytest.importorskip("tf2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    from db_tf.export.onnx import DEFAULT_OPSET

    rng = np.random.default_rng(4)
    inputs = keras.Input((None, None, 6))
    hidden = ModulatedDeformConv2D(8, strides=2, unstrided_offsets=True, name="official")(inputs)
    model = keras.Model(inputs, ModulatedDeformConv2D(5, strides=2, deformable_groups=2, name="mmcv")(hidden))
    for layer in model.layers[1:]:
        kernel = layer.conv_offset.kernel
        kernel.assign(rng.normal(0, 1.0 / np.sqrt(np.prod(kernel.shape[:3])), kernel.shape))
        layer.conv_offset.bias.assign(rng.normal(size=layer.conv_offset.bias.shape))
    spec = tf.TensorSpec([None, None, None, 6], tf.float32, name="images")
    function = tf.function(lambda images: model(images), input_signature=[spec], autograph=False)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=[spec], opset=DEFAULT_OPSET)
    path = tmp_path / "dcn.onnx"
    path.write_bytes(proto.SerializeToString())
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(2, 16, 12, 6), (1, 8, 20, 6)]:
        images = rng.normal(size=shape).astype(np.float32)
        (got,) = session.run(None, {session.get_inputs()[0].name: images})
        expected = model(images).numpy()
        assert got.shape == expected.shape == (shape[0], shape[1] // 4, shape[2] // 4, 5)
        np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
