"""db_tf.tools.import_torch: PyTorch DB / DBNet++ models with the official tensor names and shapes (MhLiao/DB and
MMOCR layouts, written here from reading those projects), random weights and BatchNorm statistics, saved as the
official trainers save them, converted, and compared map for map; plus detection, bad-input and CLI checks.

The PyTorch definitions below are this test's own: they follow the reference code's module names and forward
passes (DB's ResNet with its deformable conv2 / conv2_offset, SegDetector, SegSpatialScaleDetector; mmdet's
ResNet with ModulatedDeformConv2dPack, MMOCR's FPNC and DBHead) using torchvision.ops.deform_conv2d.
Skipped when torch / torchvision are not installed."""
import contextlib
import copy
import json

import keras
import numpy as np
import pytest
from torch_support import torch_or_skip

torch = torch_or_skip("torchvision.ops")
nn = torch.nn
from torchvision.ops import deform_conv2d  # noqa: E402

from db_tf.models import DBNet  # noqa: E402
from db_tf.presets import load_preset  # noqa: E402
from db_tf.tools import import_torch  # noqa: E402
from db_tf.tools.import_torch import ARCHITECTURES  # noqa: E402

# float32 probability maps agree to 1.2e-5 (R18) .. 5.3e-5 (MMOCR R50-DCN ASF) at worst, measured; that is random
# networks amplifying float32 rounding (PyTorch's own float32 and float64 maps of that model differ by 4.6e-5), so
# the 1e-4 is kept for float32 and the mapping itself is checked in float64, where the maps agree to
# 1.2e-7 (the head's final float32 cast) for every case: 1e-6 there.
ATOL = 1e-4
SIZE = (64, 96)


# ----------------------------------------------------------------------------- PyTorch reference models

class DeformConv2(nn.Module):
    """DCNv2 3x3 in either layout: MMOCR's ModulatedDeformConv2dPack (conv_offset inside, strided like the conv)
    or DB's (the block's sibling conv2_offset, never strided; the CUDA op reads its map's memory as if it had
    the output's size: emulated by `official_reading`)."""

    def __init__(self, planes, stride, family):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(planes, planes, 3, 3))
        self.stride, self.family = stride, family
        if family == "mmocr":
            self.conv_offset = nn.Conv2d(planes, 27, 3, stride, 1)

    def forward(self, x, offset_mask):
        offset, mask = offset_mask[:, :18], torch.sigmoid(offset_mask[:, 18:])
        out_h, out_w = (x.shape[2] - 1) // self.stride + 1, (x.shape[3] - 1) // self.stride + 1
        if offset.shape[2:] != (out_h, out_w):
            offset, mask = official_reading(offset, out_h, out_w), official_reading(mask, out_h, out_w)
        return deform_conv2d(x, offset, self.weight, stride=self.stride, padding=1, mask=mask)


def official_reading(maps, out_h, out_w):
    """The first C * out_h * out_w values of each sample's (C, H, W) memory, viewed as (C, out_h, out_w)."""
    n, channels = maps.shape[:2]
    return maps.contiguous().reshape(n, -1)[:, : channels * out_h * out_w].reshape(n, channels, out_h, out_w)


class Block(nn.Module):
    """torchvision / DB / mmdet basic (depth 18, 34) or bottleneck (50) block; conv2 deformable if asked."""

    def __init__(self, cin, planes, stride, bottleneck, deformable, family):
        super().__init__()
        expansion = 4 if bottleneck else 1
        self.bottleneck = bottleneck
        if bottleneck:
            self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
            conv2_stride = stride
        else:
            self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
            conv2_stride = 1
        self.bn1 = nn.BatchNorm2d(planes)
        self.deformable = deformable
        if deformable:
            self.conv2 = DeformConv2(planes, conv2_stride, family)
            if family == "db":
                self.conv2_offset = nn.Conv2d(planes, 27, 3, padding=1)
        else:
            self.conv2 = nn.Conv2d(planes, planes, 3, conv2_stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if bottleneck:
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride != 1 or cin != planes * expansion:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * expansion, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes * expansion))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        if self.deformable:
            offset_conv = self.conv2_offset if hasattr(self, "conv2_offset") else self.conv2.conv_offset
            out = self.bn2(self.conv2(out, offset_conv(out)))
        else:
            out = self.bn2(self.conv2(out))
        if self.bottleneck:
            out = self.bn3(self.conv3(torch.relu(out)))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}

    def __init__(self, depth, deformable, family):
        super().__init__()
        bottleneck = depth == 50
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for stage, (blocks, planes) in enumerate(zip(self.BLOCKS[depth], (64, 128, 256, 512)), start=1):
            layer = []
            for index in range(blocks):
                stride = 2 if stage > 1 and index == 0 else 1
                layer.append(Block(cin, planes, stride, bottleneck, deformable and stage > 1, family))
                cin = planes * (4 if bottleneck else 1)
            setattr(self, f"layer{stage}", nn.Sequential(*layer))
        if family == "db":   # the official ResNet keeps torchvision's classifier and an unused `smooth` conv
            self.fc = nn.Linear(cin, 1000)
            self.smooth = nn.Conv2d(2048, 256, 1, padding=1)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        features = []
        for stage in range(1, 5):
            x = getattr(self, f"layer{stage}")(x)
            features.append(x)
        return features


def head_branch(inner, sigmoid):
    layers = [nn.Conv2d(inner, inner // 4, 3, padding=1, bias=False), nn.BatchNorm2d(inner // 4), nn.ReLU(),
              nn.ConvTranspose2d(inner // 4, inner // 4, 2, 2), nn.BatchNorm2d(inner // 4), nn.ReLU(),
              nn.ConvTranspose2d(inner // 4, 1, 2, 2)]
    return nn.Sequential(*(layers + [nn.Sigmoid()] if sigmoid else layers))


def up(x, factor):
    return nn.functional.interpolate(x, scale_factor=factor, mode="nearest")


class ChannelSpatialAttention(nn.Module):
    """DB's ScaleChannelSpatialAttention (module names of DB's nn.Sequential layout)."""

    def __init__(self, channels, levels=4):
        super().__init__()
        self.channel_wise = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels // 4, 1, bias=False),
                                          nn.ReLU(), nn.Conv2d(channels // 4, channels, 1, bias=False))
        self.spatial_wise = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, bias=False), nn.ReLU(),
                                          nn.Conv2d(1, 1, 1, bias=False), nn.Sigmoid())
        self.attention_wise = nn.Sequential(nn.Conv2d(channels, levels, 1, bias=False), nn.Sigmoid())

    def forward(self, x):
        x = torch.sigmoid(self.channel_wise(x)) + x
        x = self.spatial_wise(x.mean(dim=1, keepdim=True)) + x
        return self.attention_wise(x)


class ScaleFeatureSelection(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.conv = nn.Conv2d(inner, inner // 4, 3, padding=1)
        self.enhanced_attention = ChannelSpatialAttention(inner // 4)

    def forward(self, fused, levels):
        score = self.enhanced_attention(self.conv(fused))
        return torch.cat([score[:, i:i + 1] * level for i, level in enumerate(levels)], dim=1)


class SegDetector(nn.Module):
    """DB's SegDetector (asf=False) / SegSpatialScaleDetector (asf=True), eval mode, adaptive threshold branch."""

    def __init__(self, in_channels, inner=256, asf=False, threshold=True):
        super().__init__()
        for level, channels in zip((2, 3, 4, 5), in_channels):
            setattr(self, f"in{level}", nn.Conv2d(channels, inner, 1, bias=False))
        for level, factor in ((5, 8), (4, 4), (3, 2)):
            setattr(self, f"out{level}", nn.Sequential(nn.Conv2d(inner, inner // 4, 3, padding=1, bias=False),
                                                       nn.Upsample(scale_factor=factor, mode="nearest")))
        self.out2 = nn.Conv2d(inner, inner // 4, 3, padding=1, bias=False)
        if asf:
            self.concat_attention = ScaleFeatureSelection(inner)
        self.binarize = head_branch(inner, sigmoid=True)
        if threshold:
            self.thresh = head_branch(inner, sigmoid=True)

    def forward(self, features):
        c2, c3, c4, c5 = features
        in5 = self.in5(c5)
        out4 = up(in5, 2) + self.in4(c4)
        out3 = up(out4, 2) + self.in3(c3)
        out2 = up(out3, 2) + self.in2(c2)
        levels = [self.out5(in5), self.out4(out4), self.out3(out3), self.out2(out2)]
        fuse = torch.cat(levels, 1)
        if hasattr(self, "concat_attention"):
            fuse = self.concat_attention(fuse, levels)
        return self.binarize(fuse), (self.thresh(fuse) if hasattr(self, "thresh") else None)


class ConvModule(nn.Module):
    """mmcv's ConvModule without norm: .conv then an optional activation."""

    def __init__(self, cin, cout, k, bias=False, act=None):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)
        self.act = act

    def forward(self, x):
        x = self.conv(x)
        return x if self.act is None else self.act(x)


class MMOCRAttention(nn.Module):
    def __init__(self, channels, levels=4):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.channel_wise = nn.Sequential(ConvModule(channels, channels // 4, 1, act=nn.ReLU()),
                                          ConvModule(channels // 4, channels, 1, act=nn.Sigmoid()))
        self.spatial_wise = nn.Sequential(ConvModule(1, 1, 3, act=nn.ReLU()), ConvModule(1, 1, 1, act=nn.Sigmoid()))
        self.attention_wise = ConvModule(channels, levels, 1, act=nn.Sigmoid())

    def forward(self, x):
        out = self.channel_wise(self.avg_pool(x)) + x
        out = self.spatial_wise(out.mean(dim=1, keepdim=True)) + out
        return self.attention_wise(out)


class FPNC(nn.Module):
    """MMOCR's FPNC (levels concatenated [p2, p3, p4, p5]), optionally with its ASF."""

    def __init__(self, in_channels, lateral=256, out=64, asf=False):
        super().__init__()
        self.lateral_convs = nn.ModuleList(ConvModule(c, lateral, 1) for c in in_channels)
        self.smooth_convs = nn.ModuleList(ConvModule(lateral, out, 3) for _ in in_channels)
        if asf:
            self.asf_conv = ConvModule(out * 4, out * 4, 3, bias=True)
            self.asf_attn = MMOCRAttention(out * 4)

    def forward(self, features):
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, features)]
        for i in (3, 2, 1):
            laterals[i - 1] = laterals[i - 1] + nn.functional.interpolate(laterals[i], size=laterals[i - 1].shape[2:],
                                                                          mode="nearest")
        outs = [conv(x) for conv, x in zip(self.smooth_convs, laterals)]
        outs = [nn.functional.interpolate(o, size=outs[0].shape[2:], mode="nearest") for o in outs]
        out = torch.cat(outs, 1)
        if hasattr(self, "asf_conv"):
            attention = self.asf_attn(self.asf_conv(out))
            out = torch.cat([attention[:, i:i + 1] * o for i, o in enumerate(outs)], 1)
        return out


class DBHead(nn.Module):
    def __init__(self, inner=256):
        super().__init__()
        self.binarize = head_branch(inner, sigmoid=False)
        self.threshold = head_branch(inner, sigmoid=True)

    def forward(self, x):
        return torch.sigmoid(self.binarize(x)), self.threshold(x)


class Detector(nn.Module):
    """backbone + decoder (DB) or backbone + neck + det_head (MMOCR); forward -> (probability, threshold)."""

    def __init__(self, arch, threshold=True):
        super().__init__()
        self.backbone = ResNet(arch.depth, arch.deformable, arch.family)
        channels = [64, 128, 256, 512] if arch.depth < 50 else [256, 512, 1024, 2048]
        if arch.family == "db":
            self.decoder = SegDetector(channels, asf=arch.asf, threshold=threshold)
        else:
            self.neck = FPNC(channels, asf=arch.asf)
            self.det_head = DBHead()

    def forward(self, x):
        features = self.backbone(x)
        if hasattr(self, "decoder"):
            return self.decoder(features)
        return self.det_head(self.neck(features))

    def last_deconvs(self):
        """The probability and threshold branches' last transposed convolutions."""
        head = self.decoder if hasattr(self, "decoder") else self.det_head
        branches = [head.binarize, getattr(head, "thresh", None), getattr(head, "threshold", None)]
        return [branch[6] for branch in branches if branch is not None]


def randomise(model, images, seed):
    """Random weights, BatchNorm statistics and offsets (about a pixel, mostly from the offset convolutions'
    biases), for a network that computes at the scale of a trained one: the neck's convolutions (no BN after
    them) are scaled to unit output spread, each BN's statistics are those of its input on `images`, randomly
    perturbed, and the last deconvolutions are rescaled so the logits have mean 0 and spread 2. (A random net at
    arbitrary scale amplifies float32 rounding so much that PyTorch's own float32 and float64 maps differ by
    1e-3: the ASF's sigmoids see inputs of several hundred, DCN offsets follow features of arbitrary size.)"""
    generator = torch.Generator().manual_seed(seed)
    normal = lambda shape, std: torch.randn(shape, generator=generator) * std
    uniform = lambda shape, low, high: low + (high - low) * torch.rand(shape, generator=generator)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(uniform(module.num_features, 0.5, 1.5))
                module.bias.copy_(normal(module.num_features, 0.1))
                module.momentum = 1.0         # the next training-mode pass stores its batch statistics
            elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, DeformConv2)):
                weight = module.weight
                fan_in = weight.shape[0] if isinstance(module, nn.ConvTranspose2d) else weight[0].numel()
                scale = 0.05 if name.endswith("offset") else np.sqrt(2.0)
                weight.copy_(normal(weight.shape, scale / np.sqrt(fan_in)))
                if getattr(module, "bias", None) is not None:
                    module.bias.copy_(normal(module.bias.shape, 0.7 if name.endswith("offset") else 0.1))
        model.train()
        # one pass: each neck convolution, as it runs, is rescaled to unit output spread (hooks fire in order)
        handles = [conv.register_forward_hook(unit_spread) for conv in unnormalised_convs(model)]
        model(images)
        for handle in handles:
            handle.remove()
        model(images)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                std = module.running_var.sqrt()
                module.running_mean.add_(normal(module.num_features, 0.2) * std)
                module.running_var.mul_(uniform(module.num_features, 0.6, 1.6))
        model.eval()
        for deconv in model.last_deconvs():
            captured = []
            hook = deconv.register_forward_hook(lambda module, inputs, output: captured.append(output))
            model(images)
            hook.remove()
            logits = captured[0] - deconv.bias
            deconv.weight.mul_(2.0 / logits.std())
            deconv.bias.fill_(-(2.0 * logits.mean() / logits.std()).item())


def unit_spread(conv, inputs, output):
    """Forward hook: scale the convolution (weight and bias) so this output has spread 1, and pass it on so."""
    spread = output.std()
    if spread < 1e-6:          # e.g. a 1x1 conv after a ReLU that is all zeros here: leave it
        return output
    conv.weight.div_(spread)
    if conv.bias is not None:
        conv.bias.div_(spread)
    return output / spread


def unnormalised_convs(model):
    """The decoder's / neck's convolutions outside the heads (which have BatchNorm), in definition order."""
    part = model.decoder if hasattr(model, "decoder") else model.neck
    return [module for name, module in part.named_modules()
            if isinstance(module, nn.Conv2d) and not name.startswith(("binarize", "thresh"))]


def save_like_the_trainers(model, family, path):
    """DB's trainer saves SegDetectorModel's state dict (its `model` is a DataParallel); MMOCR saves a dict with
    meta and state_dict."""
    state = model.state_dict()
    if family == "db":
        torch.save({f"model.module.{key}": value for key, value in state.items()}, path)
    else:
        torch.save({"meta": {"mmocr_version": "1.0.1", "epoch": 1200}, "state_dict": state}, path)


def torch_case(name, tmp_path, threshold=True, seed=0):
    """(checkpoint path, NCHW images, the randomised PyTorch model in eval mode)."""
    arch = ARCHITECTURES[name]
    images = np.random.default_rng(seed).normal(size=(2, 3, *SIZE)).astype(np.float32)
    model = Detector(arch, threshold)
    randomise(model, torch.from_numpy(images), seed)
    checkpoint = tmp_path / f"{name}.pth"
    save_like_the_trainers(model, arch.family, checkpoint)
    return checkpoint, images, model


def torch_maps(model, images, dtype):
    """NHWC (probability, threshold or None) of the PyTorch model in `dtype`."""
    model = copy.deepcopy(model).to(dtype)
    with torch.no_grad():
        maps = model(torch.from_numpy(images).to(dtype))
    return [None if m is None else np.transpose(m.double().numpy(), (0, 2, 3, 1)) for m in maps]


@contextlib.contextmanager
def keras_floatx(dtype):
    previous = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(previous[0])
        keras.config.set_dtype_policy(previous[1])


# ----------------------------------------------------------------------------- parity

def convert_and_compare(name, tmp_path, threshold=True):
    """Convert as a user would (float32), compare float32 maps within ATOL; then rebuild the Keras model in
    float64 from the same file and compare with PyTorch in float64 within 1e-6: float32 rounding, amplified by a
    deep random network, cannot hide a mapping error there (only the head's final float32 cast remains)."""
    checkpoint, images, torch_model = torch_case(name, tmp_path, threshold)
    out = tmp_path / "weights" / f"{name}.weights.h5"
    import_torch.main(["--checkpoint", str(checkpoint), "--out", str(out)])
    model, meta = load_preset(out.with_name(f"{name}.json"))
    assert meta["model"] == ARCHITECTURES[name].model_kwargs(256)
    probability, thresh = torch_maps(torch_model, images, torch.float32)
    assert probability.std() > 0.15 and probability.min() < 0.1 and probability.max() > 0.9   # worth comparing
    inputs = np.transpose(images, (0, 2, 3, 1))
    maps = model(inputs, training=False, return_maps=True)
    print(f"{name}: max |P_keras - P_torch| float32 {np.abs(maps['probability'] - probability).max():.2e}", end="")
    np.testing.assert_allclose(maps["probability"], probability, atol=ATOL, rtol=0)
    if thresh is not None:
        np.testing.assert_allclose(maps["threshold"], thresh, atol=ATOL, rtol=0)
    with keras_floatx("float64"):
        model64 = DBNet(**meta["model"])
        model64.load_weights(str(out))
        maps = model64(inputs.astype(np.float64), training=False, return_maps=True)
    probability, thresh = torch_maps(torch_model, images, torch.float64)
    print(f", float64 {np.abs(maps['probability'] - probability).max():.2e}")
    np.testing.assert_allclose(maps["probability"], probability, atol=1e-6, rtol=0)
    if thresh is not None:
        np.testing.assert_allclose(maps["threshold"], thresh, atol=1e-6, rtol=0)
    return meta


@pytest.mark.parametrize("name", ["db_r18", "db_r18_dcn", "mmocr_r18", "mmocr_r18_asf",
                                  pytest.param("db_r50", marks=pytest.mark.slow),
                                  pytest.param("db_r50_dcn", marks=pytest.mark.slow),
                                  pytest.param("db_r50_dcn_asf", marks=pytest.mark.slow),
                                  pytest.param("mmocr_r50_dcn", marks=pytest.mark.slow),
                                  pytest.param("mmocr_r50_dcn_asf", marks=pytest.mark.slow)])
@pytest.mark.slow
def test_converted_model_matches_pytorch(name, tmp_path):
    meta = convert_and_compare(name, tmp_path)
    family = ARCHITECTURES[name].family
    assert meta["preprocess"]["channel_order"] == ("BGR" if family == "db" else "RGB")


@pytest.mark.slow
def test_db_r18_asf_and_no_threshold_branch(tmp_path, capsys):
    """DBNet++ on R18 (an ASF decoder with 64-channel attention), and a checkpoint trained without adaptive
    thresholds: the probability map still matches; the tool says the threshold branch is fresh."""
    convert_and_compare("db_r18_asf", tmp_path, threshold=False)
    assert "no threshold branch" in capsys.readouterr().out


# ----------------------------------------------------------------------------- detection and bad input

def fake_state(name):
    """Names and shapes of a real model's state dict (values irrelevant), without wrappers."""
    model = Detector(ARCHITECTURES[name])
    return {key: value.numpy() for key, value in model.state_dict().items()}


@pytest.mark.parametrize("name", ["db_r18", "db_r18_dcn", "db_r34", "db_r50_dcn_asf", "mmocr_r18", "mmocr_r50_dcn",
                                  "mmocr_r50_asf"])
def test_detects_the_architecture_from_names(name):
    arch, inner = import_torch.detect_architecture(fake_state(name))
    assert (arch.name, inner) == (name, 256)


def test_prefixes_of_the_official_trainer_are_removed():
    stripped = import_torch.strip_prefixes("model.module.backbone.layer1.0.conv1.weight")
    assert stripped == "backbone.layer1.0.conv1.weight"
    assert import_torch.strip_prefixes("module.decoder.in5.weight") == "decoder.in5.weight"
    assert import_torch.strip_prefixes("neck.lateral_convs.0.conv.weight") == "neck.lateral_convs.0.conv.weight"


def test_unused_tensors_are_listed_and_unexpected_ones_stop_the_import(tmp_path, capsys):
    model = Detector(ARCHITECTURES["db_r18"])
    state = {f"model.module.{k}": v for k, v in model.state_dict().items()}
    torch.save(state, tmp_path / "ok.pth")
    import_torch.main(["--checkpoint", str(tmp_path / "ok.pth"), "--out", str(tmp_path / "ok.weights.h5")])
    printed = capsys.readouterr().out
    assert "backbone.fc.weight" in printed and "backbone.smooth.weight" in printed
    assert "BatchNorm num_batches_tracked counters" in printed
    state["model.module.decoder.in5.bias"] = torch.zeros(256)       # a layer db-tf builds without a bias
    torch.save(state, tmp_path / "bias.pth")
    with pytest.raises(SystemExit, match=r"decoder\.in5\.bias.*--allow-unused"):
        import_torch.main(["--checkpoint", str(tmp_path / "bias.pth"), "--out", str(tmp_path / "b.weights.h5")])
    assert not (tmp_path / "b.weights.h5").exists()
    import_torch.main(["--checkpoint", str(tmp_path / "bias.pth"), "--out", str(tmp_path / "b.weights.h5"),
                       "--allow-unused"])
    assert "decoder.in5.bias" in capsys.readouterr().out


def test_shape_mismatch_fails_loudly_and_writes_nothing(tmp_path):
    model = Detector(ARCHITECTURES["db_r18_dcn"])
    state = {f"model.module.{k}": v for k, v in model.state_dict().items()}
    state["model.module.backbone.layer3.1.conv2_offset.weight"] = torch.zeros(18, 256, 3, 3)   # DCNv1's offsets
    torch.save(state, tmp_path / "v1.pth")
    out = tmp_path / "v1.weights.h5"
    with pytest.raises(SystemExit, match=r"layer3\.1\.conv2_offset\.weight: shape \(18, 256, 3, 3\)"):
        import_torch.main(["--checkpoint", str(tmp_path / "v1.pth"), "--out", str(out)])
    assert not out.exists() and not out.with_name("v1.json").exists()


def test_forced_architecture_must_fit(tmp_path):
    model = Detector(ARCHITECTURES["db_r18"])
    torch.save(model.state_dict(), tmp_path / "r18.pth")
    with pytest.raises(SystemExit, match="missing from the checkpoint"):
        import_torch.main(["--checkpoint", str(tmp_path / "r18.pth"), "--out", str(tmp_path / "x.weights.h5"),
                           "--architecture", "db_r18_dcn"])
    with pytest.raises(SystemExit, match="tensor names are db's"):
        import_torch.main(["--checkpoint", str(tmp_path / "r18.pth"), "--out", str(tmp_path / "x.weights.h5"),
                           "--architecture", "mmocr_r18"])


def test_not_a_db_checkpoint(tmp_path):
    torch.save({"conv.weight": torch.zeros(3, 3, 1, 1)}, tmp_path / "other.pth")
    with pytest.raises(SystemExit, match="neither a MhLiao/DB checkpoint"):
        import_torch.main(["--checkpoint", str(tmp_path / "other.pth"), "--out", str(tmp_path / "o.weights.h5")])
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit, match="cannot read it as a PyTorch checkpoint"):
        import_torch.main(["--checkpoint", str(tmp_path / "garbage.pth"), "--out", str(tmp_path / "g.weights.h5")])
    with pytest.raises(SystemExit, match="checkpoint not found"):
        import_torch.main(["--checkpoint", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "m.weights.h5")])


def test_preset_json_follows_the_existing_importer(tmp_path):
    model = Detector(ARCHITECTURES["mmocr_r18"])
    torch.save({"state_dict": model.state_dict()}, tmp_path / "mm.pth")
    out = tmp_path / "w" / "mmocr_dbnet_r18.weights.h5"
    import_torch.main(["--checkpoint", str(tmp_path / "mm.pth"), "--out", str(out), "--source", "test"])
    meta = json.loads(out.with_name("mmocr_dbnet_r18.json").read_text())
    assert set(meta) == {"name", "model", "preprocess", "postprocess", "source", "license"}
    assert meta["name"] == "mmocr_dbnet_r18" and meta["source"] == "test"
    assert meta["model"] == {"backbone": "resnet18", "neck": "fpn", "inner_channels": 256}
    assert meta["preprocess"]["mean"] == [0.485, 0.456, 0.406]
