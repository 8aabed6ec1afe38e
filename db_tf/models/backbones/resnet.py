"""ResNet-18/34/50 backbones returning [C2, C3, C4, C5] (strides 4, 8, 16, 32).

The networks are torchvision's ResNets without the classifier, as used by the official DB code
(MhLiao/DB `backbones/resnet.py`):

- basic blocks (two 3x3 convolutions) for ResNet-18/34, bottleneck blocks (1x1, 3x3, 1x1 with 4x
  expansion) for ResNet-50 with the stride in the 3x3 convolution ("ResNet v1.5", torchvision style);
- a 1x1 convolution + BN shortcut when the shape changes;
- convolutions without bias, BN with epsilon 1e-5 and momentum 0.9 (PyTorch's momentum 0.1 counts
  the other way), Kaiming-normal (fan_out) initialisation.

The published DB R18/R50 models use modulated deformable convolutions (DCNv2,
db_tf/models/deform_conv.py) in stages 3-5 (layer2..layer4): `deform_resnet18` / `deform_resnet50` put them
where the official code does, in the second 3x3 convolution of each basic block (conv2, never strided) and
in the 3x3 convolution of each bottleneck (conv2, strided in the first block of a stage). The official
bottleneck's offset convolution ignores that stride (MhLiao/DB issue #250): `deform_resnet50` reproduces
what its CUDA op then computes so official checkpoints convert exactly, while `deform_resnet50_mmcv` strides
the offset convolution as mmcv / MMOCR do (the natural choice when training from scratch). The paper's
ablation credits deformable convolution with roughly one to two points of F-measure.

Strided convolutions pad explicitly and symmetrically, then run 'valid', as PyTorch does: Keras
'same' padding puts the extra row/column only at the bottom/right, which would shift the features
by half a pixel and make torchvision weights compute something else. Layer names follow
torchvision's parameter names ("layer2.0.downsample.0" ...) so such weights can be mapped by name.

`keras_resnet50` wraps `keras.applications.ResNet50` so users who are online can start from ImageNet
weights (`weights="imagenet"`). That network is the original Caffe ResNet-50 (stride in the first 1x1
convolution, convolutions with bias, BN epsilon 1.001e-5) and its ImageNet weights expect
Caffe-style input: BGR channel order, 0..255 scale, minus the per-channel mean (103.939, 116.779,
123.68) in BGR order, no division by a std. With our normalisation `(x / 255 - MEAN) / STD` that is
    cfg.DATA.CHANNEL_ORDER = "BGR"
    cfg.DATA.MEAN = [0.40760, 0.45796, 0.48502]   # 103.939, 116.779, 123.68 divided by 255 (B, G, R)
    cfg.DATA.STD = [0.0039216, 0.0039216, 0.0039216]   # 1 / 255
(MEAN/STD listed in the order of the channels fed to the network, as in the PaddleOCR presets).
The default ImageNet mean/std RGB setting also trains, but starts further from the pretrained optimum.
"""
import keras
from keras import layers

from db_tf.models.deform_conv import ModulatedDeformConv2D

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9
# torchvision initialises ResNet convolutions with kaiming_normal_(mode="fan_out", nonlinearity="relu").
def conv_init():
    """A fresh He (fan_out) initializer per layer: one shared unseeded Keras 3 initializer instance
    returns the SAME values on every call, which would start same-shaped kernels identical."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")

# Blocks per stage (layer1..layer4) and the block type of each depth.
STAGE_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}
STAGE_WIDTHS = (64, 128, 256, 512)
BOTTLENECK_EXPANSION = 4
# Stages (layer1..layer4) whose 3x3 conv2 is deformable in the official DB deformable ResNets.
DEFORMABLE_STAGES = (False, True, True, True)


def conv_bn(x, filters, kernel_size, stride, name, bn_name, relu=True):
    """Convolution without bias -> BN (-> ReLU), padded like PyTorch's `padding=kernel_size // 2`."""
    if stride > 1 and kernel_size > 1:
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"  # symmetric for odd kernels at stride 1, and a no-op for 1x1
    x = layers.Conv2D(filters, kernel_size, strides=stride, padding=padding, use_bias=False,
                      kernel_initializer=conv_init(), name=name)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=bn_name)(x)
    return layers.ReLU(name=f"{bn_name}_relu")(x) if relu else x


def deform_conv_bn(x, filters, stride, name, bn_name, relu=True, unstrided_offsets=False):
    """DCNv2 3x3 (no bias, its offset / mask convolution zero-initialised) -> BN (-> ReLU)."""
    x = ModulatedDeformConv2D(filters, 3, strides=stride, unstrided_offsets=unstrided_offsets,
                              kernel_initializer=conv_init(), name=name)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=bn_name)(x)
    return layers.ReLU(name=f"{bn_name}_relu")(x) if relu else x


def conv2_bn(x, filters, stride, prefix, relu, deformable):
    """The block's 3x3 conv2: plain, or deformable when `deformable` is a dict of deform_conv_bn options."""
    if deformable is None:
        return conv_bn(x, filters, 3, stride, f"{prefix}.conv2", f"{prefix}.bn2", relu=relu)
    return deform_conv_bn(x, filters, stride, f"{prefix}.conv2", f"{prefix}.bn2", relu=relu, **deformable)


def shortcut(x, filters, stride, prefix):
    """Identity, or torchvision's `downsample` (1x1 conv with stride + BN) when the shape changes."""
    if stride == 1 and x.shape[-1] == filters:
        return x
    return conv_bn(x, filters, 1, stride, f"{prefix}.downsample.0", f"{prefix}.downsample.1", relu=False)


def basic_block(x, planes, stride, prefix, deformable=None):
    """Two 3x3 convolutions (the first one strided) plus the shortcut; `deformable`: see conv2_bn."""
    residual = shortcut(x, planes, stride, prefix)
    y = conv_bn(x, planes, 3, stride, f"{prefix}.conv1", f"{prefix}.bn1")
    y = conv2_bn(y, planes, 1, prefix, relu=False, deformable=deformable)
    y = layers.Add(name=f"{prefix}.add")([y, residual])
    return layers.ReLU(name=f"{prefix}.relu")(y)


def bottleneck_block(x, planes, stride, prefix, deformable=None):
    """1x1 reduce, 3x3 (strided: torchvision's v1.5), 1x1 expand to 4 * planes, plus the shortcut."""
    residual = shortcut(x, planes * BOTTLENECK_EXPANSION, stride, prefix)
    y = conv_bn(x, planes, 1, 1, f"{prefix}.conv1", f"{prefix}.bn1")
    y = conv2_bn(y, planes, stride, prefix, relu=True, deformable=deformable)
    y = conv_bn(y, planes * BOTTLENECK_EXPANSION, 1, 1, f"{prefix}.conv3", f"{prefix}.bn3", relu=False)
    y = layers.Add(name=f"{prefix}.add")([y, residual])
    return layers.ReLU(name=f"{prefix}.relu")(y)


def resnet(depth, weights=None, name=None, deformable=None):
    """ResNet-`depth` feature extractor: images (N, H, W, 3) -> [C2, C3, C4, C5].

    `weights`: None (random initialisation) or the path of a `.weights.h5` file of this backbone.
    No ImageNet weights are built in (see `keras_resnet50` for those).
    `deformable`: None, or deform_conv_bn options ({} or {"unstrided_offsets": True}) to make conv2 of the
    DEFORMABLE_STAGES deformable.
    """
    if depth not in STAGE_BLOCKS:
        raise ValueError(f"ResNet depth must be one of {sorted(STAGE_BLOCKS)}, got {depth}")
    if weights == "imagenet":
        raise ValueError(f"resnet{depth} has no built-in ImageNet weights; use backbone 'keras_resnet50' "
                         "with weights='imagenet', or pass a .weights.h5 path")
    block = bottleneck_block if depth == 50 else basic_block

    images = keras.Input((None, None, 3), name="images")
    x = conv_bn(images, 64, 7, 2, "conv1", "bn1")
    # Zero padding is equivalent to PyTorch's -inf padding here because the input is >= 0 (after ReLU).
    x = layers.ZeroPadding2D(1, name="maxpool_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="maxpool")(x)
    features = []
    for stage, (blocks, planes) in enumerate(zip(STAGE_BLOCKS[depth], STAGE_WIDTHS), start=1):
        for index in range(blocks):
            stride = 2 if stage > 1 and index == 0 else 1
            stage_deformable = deformable if DEFORMABLE_STAGES[stage - 1] else None
            x = block(x, planes, stride, f"layer{stage}.{index}", stage_deformable)
        features.append(x)
    model = keras.Model(images, features, name=name or f"resnet{depth}")
    if weights:
        model.load_weights(weights)
    return model


def resnet18(weights=None, name="resnet18"):
    return resnet(18, weights, name)


def resnet34(weights=None, name="resnet34"):
    return resnet(34, weights, name)


def resnet50(weights=None, name="resnet50"):
    return resnet(50, weights, name)


def deform_resnet18(weights=None, name="deform_resnet18"):
    """MhLiao/DB's deformable_resnet18 (its DCNs are never strided, so mmcv's layout is the same)."""
    return resnet(18, weights, name, deformable={})


def deform_resnet50(weights=None, name="deform_resnet50"):
    """MhLiao/DB's deformable_resnet50, including its unstrided offset convolutions (see the module doc)."""
    return resnet(50, weights, name, deformable={"unstrided_offsets": True})


def deform_resnet50_mmcv(weights=None, name="deform_resnet50_mmcv"):
    """ResNet-50 with DCNv2 in stages 3-5 as mmdet / MMOCR build it: the offset convolution is strided too."""
    return resnet(50, weights, name, deformable={})


# Outputs of keras.applications.ResNet50 at strides 4, 8, 16, 32.
KERAS_RESNET50_FEATURES = ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out")


def keras_resnet50(weights=None, name="keras_resnet50"):
    """`keras.applications.ResNet50` as a [C2..C5] extractor; weights None, "imagenet" (downloads) or a path.

    ImageNet weights expect Caffe-style BGR mean-subtracted input: see this module's docstring for the
    matching cfg.DATA settings.
    """
    base = keras.applications.ResNet50(include_top=False, weights=weights or None,
                                       input_shape=(None, None, 3))
    outputs = [base.get_layer(layer_name).output for layer_name in KERAS_RESNET50_FEATURES]
    return keras.Model(base.input, outputs, name=name)
