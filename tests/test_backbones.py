"""ResNet backbones: feature strides, torchvision parameter counts, BN settings, PyTorch-style padding."""
import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy as to_numpy

from db_tf.models.backbones import BACKBONES, resnet18
from db_tf.models.backbones.resnet import STAGE_BLOCKS

# torchvision's published totals (resnet18: 11,689,512; resnet34: 21,797,672; resnet50: 25,557,032)
# minus the ImageNet classifier fc (512*1000+1000 = 513,000, or 2048*1000+1000 = 2,049,000).
TORCHVISION_WITHOUT_FC = {18: 11_689_512 - 513_000, 34: 21_797_672 - 513_000, 50: 25_557_032 - 2_049_000}
CHANNELS = {18: (64, 128, 256, 512), 34: (64, 128, 256, 512), 50: (256, 512, 1024, 2048)}


def hand_count(depth):
    """Learnable parameters summed from the architecture table (conv k*k*cin*cout, BN gamma+beta)."""
    def conv_bn(cin, cout, k):
        return k * k * cin * cout + 2 * cout

    total = conv_bn(3, 64, 7)
    cin = 64
    for stage, blocks in enumerate(STAGE_BLOCKS[depth]):
        planes = 64 * 2 ** stage
        for index in range(blocks):
            strided = stage > 0 and index == 0
            if depth == 50:
                total += conv_bn(cin, planes, 1) + conv_bn(planes, planes, 3) + conv_bn(planes, 4 * planes, 1)
                cout = 4 * planes
            else:
                total += conv_bn(cin, planes, 3) + conv_bn(planes, planes, 3)
                cout = planes
            if strided or cin != cout:
                total += conv_bn(cin, cout, 1)
            cin = cout
    return total


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


@pytest.fixture(scope="module")
def backbones():
    """Each backbone built once for this module (building ResNet-50 takes a second or two)."""
    return {depth: BACKBONES[f"resnet{depth}"]() for depth in (18, 34, 50)}


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_resnet_features_strides_channels_and_parameter_count(backbones, depth):
    model = backbones[depth]
    features = model(np.zeros((1, 64, 96, 3), np.float32))
    assert [tuple(f.shape) for f in features] == [
        (1, 64 // s, 96 // s, c) for s, c in zip((4, 8, 16, 32), CHANNELS[depth])]
    count = trainable_count(model)
    print(f"resnet{depth} backbone trainable parameters: {count:,}")
    assert hand_count(depth) == TORCHVISION_WITHOUT_FC[depth]  # the hand formula itself is right
    assert count == TORCHVISION_WITHOUT_FC[depth]


def test_batch_norm_matches_pytorch_defaults(backbones):
    model = backbones[18]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 20  # stem + 2 per block x 8 + 3 downsample shortcuts
    assert all(layer.epsilon == 1e-5 and layer.momentum == 0.9 for layer in norms)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and not any(layer.use_bias for layer in convs)


def test_stem_pads_symmetrically_like_pytorch(backbones):
    """conv1 (7x7, stride 2, padding 3) against a numpy convolution with PyTorch's padding."""
    model = backbones[18]
    stem = keras.Model(model.input, model.get_layer("conv1").output)
    rng = np.random.default_rng(0)
    image = rng.standard_normal((1, 16, 16, 3)).astype(np.float32)
    kernel = model.get_layer("conv1").kernel.numpy()
    padded = np.pad(image, ((0, 0), (3, 3), (3, 3), (0, 0)))
    expected = sum(padded[:, i:i + 16:2, j:j + 16:2, :] @ kernel[i, j] for i in range(7) for j in range(7))
    np.testing.assert_allclose(to_numpy(stem(image)), expected, rtol=1e-4, atol=1e-4)


def test_strided_block_conv_pads_symmetrically(backbones):
    """layer2.0.conv1 (3x3, stride 2, padding 1): output (0, 0) must see input rows/cols -1..1."""
    model = backbones[18]
    layer = model.get_layer("layer2.0.conv1")
    sub = keras.Model(model.get_layer("layer2.0.conv1_pad").input, layer.output)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 8, 8, 64)).astype(np.float32)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    kernel = layer.kernel.numpy()
    expected = sum(padded[:, i:i + 8:2, j:j + 8:2, :] @ kernel[i, j] for i in range(3) for j in range(3))
    np.testing.assert_allclose(to_numpy(sub(x)), expected, rtol=1e-4, atol=1e-4)


def test_resnet50_strides_in_the_3x3_convolution(backbones):
    model = backbones[50]
    assert model.get_layer("layer2.0.conv1").strides == (1, 1)
    assert model.get_layer("layer2.0.conv2").strides == (2, 2)


def test_keras_resnet50_adapter_without_download():
    model = BACKBONES["keras_resnet50"](weights=None)
    features = model(np.zeros((1, 64, 64, 3), np.float32))
    assert [tuple(f.shape) for f in features] == [
        (1, 64 // s, 64 // s, c) for s, c in zip((4, 8, 16, 32), CHANNELS[50])]


def test_own_resnets_refuse_imagenet_weights_clearly():
    with pytest.raises(ValueError, match="keras_resnet50"):
        resnet18(weights="imagenet")
