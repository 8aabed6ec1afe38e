"""Import MhLiao/DB and MMOCR DBNet / DBNet++ PyTorch checkpoints into a db-tf DBNet.

    python -m db_tf.tools.import_torch --checkpoint ic15_resnet18 --out weights/db_r18_ic15.weights.h5

writes the Keras weights and, beside them, the preset JSON (`weights/db_r18_ic15.json`) that
`TextDetector`, `inference.py`, `evaluate.py` and `export.py` load by path or name.

Supported (the architecture is detected from the tensor names and shapes; `--architecture` forces one):
  MhLiao/DB (SegDetectorModel, saved from DataParallel: keys `model.module.backbone.*`, `model.module.decoder.*`)
    db_r18, db_r34, db_r50            ResNet + SegDetector (FPN), with or without the threshold branch
    db_r18_dcn, db_r50_dcn            deformable_resnet18 / 50 (DCNv2 in stages 3-5)
    db_r50_dcn_asf (and the others + _asf)   DBNet++: SegSpatialScaleDetector, scale_channel_spatial attention
  MMOCR 1.x (`state_dict` keys `backbone.*`, `neck.lateral_convs.*` / `smooth_convs.*`, `det_head.binarize.*`)
    mmocr_r18, mmocr_r50, mmocr_r50_dcn       dbnet_resnet18_fpnc, dbnet_resnet50(-dcnv2)_fpnc
    mmocr_r50_dcn_asf, mmocr_r50_asf          dbnetpp_resnet50(-dcnv2)_fpnc (FPNC with asf_cfg)

Every tensor is checked: a shape that does not fit stops the import (nothing is written) with the tensor's name;
tensors the architecture has no use for are listed — the official ResNet's classifier (`fc`) and `smooth`
layer and BatchNorm's `num_batches_tracked` are expected, anything else stops the import unless
--allow-unused. A checkpoint without the threshold branch (DB's adaptive=False) imports with a seeded fresh
threshold branch, as said in the output.

Layout conversions: convolution (out, in, kh, kw) -> Keras (kh, kw, in, out); transposed convolution (in, out,
kh, kw) -> (kh, kw, out, in); BatchNorm weight / bias / running_mean / running_var -> gamma / beta /
moving_mean / moving_variance (epsilon 1e-5 on both sides). DCNv2's offset channels are already in db-tf's
layout (torchvision / mmcv / DB: (dy, dx) per kernel position, then the 9 mask logits). MMOCR's FPNC
concatenates the levels as [p2, p3, p4, p5], db-tf as the official [p5, p4, p3, p2]: the input channels of the
convolutions after the concatenation (the heads' first convolutions, the ASF convolution) and the ASF's four
level weights are permuted to match.

PyTorch is an optional dependency of this tool only (`pip install torch`); db-tf itself never imports it.
Checkpoints are read with torch.load(weights_only=True); MMOCR files whose metadata needs more pass
--trust-checkpoint (full unpickling: only for files you trust).
"""
import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WEIGHTS_SUFFIX = ".weights.h5"
LEVELS = (2, 3, 4, 5)
# MhLiao/DB: BGR image minus this mean (named RGB_MEAN in its NormalizeImage), divided by 255.
DB_MEAN_255 = (122.67891434, 116.66876762, 104.00698793)
PREPROCESS = {
    "db": {"channel_order": "BGR", "mean": [round(v / 255, 8) for v in DB_MEAN_255], "std": [1.0, 1.0, 1.0],
           "short_side": 736, "max_side": 2560},
    # MMOCR: RGB, ImageNet mean / std, test Resize scale (1333, 736) keep_ratio
    "mmocr": {"channel_order": "RGB", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
              "short_side": 736, "max_side": 1333},
}
POSTPROCESS = {
    "db": {"thresh": 0.3, "box_thresh": 0.6, "unclip_ratio": 1.5},      # DB's eval commands (--box_thresh 0.6)
    "mmocr": {"thresh": 0.3, "box_thresh": 0.3, "unclip_ratio": 1.5},   # DBPostprocessor's defaults
}
# Tensors a checkpoint may hold that no db-tf layer needs.
EXPECTED_UNUSED = (re.compile(r"^backbone\.fc\."), re.compile(r"^backbone\.smooth\."),
                   re.compile(r"\.num_batches_tracked$"))
# Wrappers around the network's own names: DB's SegDetectorModel.model (DataParallel: .module).
PREFIXES = ("model.", "module.")


class ImportMismatch(ValueError):
    """The checkpoint does not fit the db-tf model; the message names the tensor."""


@dataclass(frozen=True)
class Architecture:
    family: str          # "db" (MhLiao/DB) or "mmocr"
    depth: int           # 18, 34, 50
    deformable: bool
    asf: bool

    @property
    def name(self):
        return f"{self.family}_r{self.depth}{'_dcn' if self.deformable else ''}{'_asf' if self.asf else ''}"

    def model_kwargs(self, inner_channels=256):
        if self.deformable:
            backbone = f"deform_resnet{self.depth}" + ("_mmcv" if self.family == "mmocr" and self.depth == 50 else "")
        else:
            backbone = f"resnet{self.depth}"
        neck = ("asf_mmocr" if self.family == "mmocr" else "asf") if self.asf else "fpn"
        return {"backbone": backbone, "neck": neck, "inner_channels": int(inner_channels)}


ARCHITECTURES = {arch.name: arch for arch in (
    Architecture(family, depth, deformable, asf)
    for family in ("db", "mmocr") for depth in (18, 34, 50) for deformable in (False, True) for asf in (False, True)
    # the deformable ResNets exist for depths 18 and 50 (as in DB); mmdet's basic block has no DCN
    if not (deformable and (depth == 34 or (family == "mmocr" and depth == 18))))}


# ----------------------------------------------------------------------------- checkpoint side

def load_state_dict(path, trust=False):
    """name -> float32 numpy array from a .pth file (a state dict, or a dict holding one under "state_dict"
    or "model"), with the DataParallel / SegDetectorModel prefixes removed."""
    from db_tf.tools.torch_runtime import load_torch

    try:
        torch = load_torch()
    except ImportError:
        raise ImportError("import_torch needs PyTorch (CPU is enough): pip install torch") from None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=not trust)
    except Exception as exc:   # torch raises UnpicklingError, RuntimeError, ... for unreadable files
        hint = "" if trust else (" (if it is a checkpoint whose metadata needs full unpickling and you trust "
                                 "its source, pass --trust-checkpoint)")
        raise ImportMismatch(f"{path}: cannot read it as a PyTorch checkpoint: {exc}{hint}") from None
    state = _find_state_dict(checkpoint, torch)
    if state is None:
        raise ImportMismatch(f"{path}: no state dict of tensors found (expected a dict of tensors, or one under "
                             f"'state_dict' / 'model'; top-level keys: {_preview(checkpoint)})")
    return {strip_prefixes(key): value.detach().cpu().float().numpy() for key, value in state.items()
            if torch.is_tensor(value)}


def _find_state_dict(checkpoint, torch):
    if isinstance(checkpoint, dict):
        if checkpoint and all(torch.is_tensor(v) for v in checkpoint.values()):
            return checkpoint
        for key in ("state_dict", "model"):
            found = _find_state_dict(checkpoint.get(key), torch) if key in checkpoint else None
            if found is not None:
                return found
    return None


def _preview(value, count=8):
    keys = list(value) if isinstance(value, dict) else [type(value).__name__]
    return ", ".join(map(str, keys[:count])) + (", ..." if len(keys) > count else "")


def strip_prefixes(key):
    while key.startswith(PREFIXES):
        key = key.split(".", 1)[1]
    return key


def detect_architecture(state):
    """The Architecture the tensor names describe, and the FPN width; ImportMismatch when it is neither family."""
    if "decoder.in5.weight" in state:
        family, lateral, asf_key = "db", "decoder.in5.weight", "decoder.concat_attention.conv.weight"
    elif "neck.lateral_convs.3.conv.weight" in state:
        family, lateral, asf_key = "mmocr", "neck.lateral_convs.3.conv.weight", "neck.asf_conv.conv.weight"
    else:
        raise ImportMismatch("neither a MhLiao/DB checkpoint (decoder.in5.weight) nor an MMOCR DBNet one "
                             f"(neck.lateral_convs.3.conv.weight); its tensors begin: {_preview(state)}")
    if "backbone.layer1.0.conv3.weight" in state:
        depth = 50
    elif "backbone.layer1.0.conv1.weight" in state:
        depth = 34 if "backbone.layer3.2.conv1.weight" in state else 18
    else:
        raise ImportMismatch("no ResNet backbone (backbone.layer1.0.conv1.weight) in the checkpoint")
    offset_key = ("backbone.layer2.0.conv2_offset.weight" if family == "db"
                  else "backbone.layer2.0.conv2.conv_offset.weight")
    name = Architecture(family, depth, offset_key in state, asf_key in state).name
    if name not in ARCHITECTURES:
        raise ImportMismatch(f"detected {name}, which db-tf does not build (deformable ResNets: 18 and 50 for DB, "
                             "50 for MMOCR)")
    return ARCHITECTURES[name], state[lateral].shape[0]


# ----------------------------------------------------------------------------- name mapping

@dataclass
class Entry:
    """One Keras variable and the checkpoint tensor that fills it."""
    key: str                 # checkpoint name
    variable: object         # keras.Variable
    layout: str = "same"     # "conv", "deconv" or "same"
    reverse_input_blocks: int = 0    # > 0: reverse this many equal blocks of input channels (MMOCR level order)
    reverse_outputs: bool = False    # reverse the output channels (MMOCR's level weights)

    def value(self, array):
        if self.layout in ("conv", "deconv"):
            if array.ndim != 4:
                raise ImportMismatch(f"{self.key}: a {self.layout} weight needs 4 dimensions, has shape {array.shape}")
            array = array.transpose(2, 3, 1, 0)
        if self.reverse_input_blocks:
            kh, kw, channels, out = array.shape
            blocks = self.reverse_input_blocks
            array = array.reshape(kh, kw, blocks, channels // blocks, out)[:, :, ::-1].reshape(kh, kw, channels, out)
        if self.reverse_outputs:
            array = array[..., ::-1]
        return array


def conv_entries(prefix, layer, bias=False, **kwargs):
    entries = [Entry(f"{prefix}.weight", layer.kernel, "conv", **kwargs)]
    if bias:
        entries.append(Entry(f"{prefix}.bias", layer.bias, "same",
                             reverse_outputs=kwargs.get("reverse_outputs", False)))
    return entries


def batch_norm_entries(prefix, layer):
    return [Entry(f"{prefix}.weight", layer.gamma), Entry(f"{prefix}.bias", layer.beta),
            Entry(f"{prefix}.running_mean", layer.moving_mean), Entry(f"{prefix}.running_var", layer.moving_variance)]


def backbone_entries(backbone, family):
    """Layer names of db-tf's ResNets are torchvision's module paths; DB and mmdet use the same ones."""
    import keras

    from db_tf.models.deform_conv import ModulatedDeformConv2D

    entries = []
    for layer in backbone.layers:
        prefix = f"backbone.{layer.name}"
        if isinstance(layer, ModulatedDeformConv2D):
            offset = f"{prefix}_offset" if family == "db" else f"{prefix}.conv_offset"
            entries += [Entry(f"{prefix}.weight", layer.kernel, "conv")]
            entries += conv_entries(offset, layer.conv_offset, bias=True)
        elif isinstance(layer, keras.layers.Conv2D):
            entries += conv_entries(prefix, layer, bias=layer.use_bias)
        elif isinstance(layer, keras.layers.BatchNormalization):
            entries += batch_norm_entries(prefix, layer)
    return entries


def neck_entries(neck, family):
    from db_tf.models.necks.asf import ASFNeck

    entries = []
    for index, level in enumerate(LEVELS):
        if family == "db":
            lateral, smooth = f"decoder.in{level}", f"decoder.out{level}" + (".0" if level > 2 else "")
        else:
            lateral, smooth = f"neck.lateral_convs.{index}.conv", f"neck.smooth_convs.{index}.conv"
        entries += conv_entries(lateral, neck.laterals[index]) + conv_entries(smooth, neck.smoothing[index])
    if not isinstance(neck, ASFNeck):
        return entries
    if family == "db":
        attention = "decoder.concat_attention.enhanced_attention"
        return entries + (conv_entries("decoder.concat_attention.conv", neck.fuse_conv, bias=True)
                          + conv_entries(f"{attention}.channel_wise.1", neck.channel_reduce)
                          + conv_entries(f"{attention}.channel_wise.3", neck.channel_expand)
                          + conv_entries(f"{attention}.spatial_wise.0", neck.spatial_conv)
                          + conv_entries(f"{attention}.spatial_wise.2", neck.spatial_scale)
                          + conv_entries(f"{attention}.attention_wise.0", neck.scale_weights))
    return entries + (conv_entries("neck.asf_conv.conv", neck.fuse_conv, bias=True, reverse_input_blocks=4)
                      + conv_entries("neck.asf_attn.channel_wise.0.conv", neck.channel_reduce)
                      + conv_entries("neck.asf_attn.channel_wise.1.conv", neck.channel_expand)
                      + conv_entries("neck.asf_attn.spatial_wise.0.conv", neck.spatial_conv)
                      + conv_entries("neck.asf_attn.spatial_wise.1.conv", neck.spatial_scale)
                      + conv_entries("neck.asf_attn.attention_wise.conv", neck.scale_weights, reverse_outputs=True))


def head_branch_entries(prefix, branch, family):
    """conv (0) -> BN (1) -> ReLU -> deconv (3) -> BN (4) -> ReLU -> deconv (6): DB's and MMOCR's Sequential."""
    blocks = 4 if family == "mmocr" else 0
    return (conv_entries(f"{prefix}.0", branch.conv, reverse_input_blocks=blocks)
            + batch_norm_entries(f"{prefix}.1", branch.bn1)
            + [Entry(f"{prefix}.3.weight", branch.deconv1.kernel, "deconv"),
               Entry(f"{prefix}.3.bias", branch.deconv1.bias)]
            + batch_norm_entries(f"{prefix}.4", branch.bn2)
            + [Entry(f"{prefix}.6.weight", branch.deconv2.kernel, "deconv"),
               Entry(f"{prefix}.6.bias", branch.deconv2.bias)])


def model_entries(model, family):
    """(entries of the probability path, entries of the threshold branch)."""
    head = "decoder" if family == "db" else "det_head"
    threshold = "decoder.thresh" if family == "db" else "det_head.threshold"
    main = (backbone_entries(model.backbone, family) + neck_entries(model.neck, family)
            + head_branch_entries(f"{head}.binarize", model.head.probability, family))
    return main, head_branch_entries(threshold, model.head.threshold, family)


# ----------------------------------------------------------------------------- conversion

@dataclass
class ImportReport:
    copied: int
    unused: list              # checkpoint tensors no layer needs (expected ones)
    threshold_imported: bool


def assign(model, state, family, allow_unused=False):
    """Copy the checkpoint into the model; checks every shape first and writes nothing on a mismatch."""
    main, threshold = model_entries(model, family)
    threshold_present = any(entry.key in state for entry in threshold)
    entries = main + (threshold if threshold_present else [])
    missing = [entry.key for entry in entries if entry.key not in state]
    if missing:
        raise ImportMismatch(f"{len(missing)} tensors the {model.backbone_name} + {model.neck_name} model needs are "
                             f"missing from the checkpoint, e.g. {', '.join(missing[:5])}")
    updates = []
    for entry in entries:
        value = entry.value(state[entry.key])
        if tuple(value.shape) != tuple(entry.variable.shape):
            raise ImportMismatch(f"{entry.key}: shape {state[entry.key].shape} does not fit {entry.variable.path} "
                                 f"(Keras shape {tuple(entry.variable.shape)}, after the layout change "
                                 f"{tuple(value.shape)})")
        updates.append((entry.variable, value))
    used = {entry.key for entry in entries}
    unused = sorted(key for key in state if key not in used)
    unexpected = [key for key in unused if not any(p.search(key) for p in EXPECTED_UNUSED)]
    if unexpected and not allow_unused:
        raise ImportMismatch(f"{len(unexpected)} tensors have no place in the {model.backbone_name} + "
                             f"{model.neck_name} model (a different architecture, or layers with biases db-tf's do "
                             f"not have?): {', '.join(unexpected[:8])}{' ...' if len(unexpected) > 8 else ''}; "
                             "--allow-unused imports anyway")
    skipped = {id(v) for v in model.head.threshold.weights} if not threshold_present else set()
    filled = {id(variable) for variable, _ in updates} | skipped
    unfilled = [v.path for v in model.weights if id(v) not in filled]
    if unfilled:   # the name mapping above must cover the whole model
        raise ImportMismatch(f"no checkpoint tensor is mapped to {', '.join(unfilled[:5])}")
    for variable, value in updates:
        variable.assign(value.astype(np.float32))
    return ImportReport(len(updates), unused, threshold_present)


def build_model(kwargs, seed=0):
    """The DBNet of `kwargs` with every variable created; the threshold branch seeded (kept when not imported)."""
    from db_tf.models.dbnet import DBNet
    from db_tf.tools.import_ppocr import seed_threshold_branch

    model = DBNet(**kwargs)
    model(np.zeros((1, 64, 64, 3), np.float32), return_maps=True)
    seed_threshold_branch(model, seed)
    return model


def import_checkpoint(path, architecture=None, allow_unused=False, trust=False, seed=0):
    """-> (model, Architecture, ImportReport)."""
    state = load_state_dict(path, trust)
    detected, inner_channels = detect_architecture(state)
    arch = ARCHITECTURES[architecture] if architecture else detected
    if arch.family != detected.family:
        raise ImportMismatch(f"--architecture {arch.name} is an {arch.family} layout but the tensor names are "
                             f"{detected.family}'s")
    model = build_model(arch.model_kwargs(inner_channels), seed)
    return model, arch, assign(model, state, arch.family, allow_unused)


def metadata(name, arch, inner_channels, source, license_text):
    return {"name": name, "model": arch.model_kwargs(inner_channels), "preprocess": dict(PREPROCESS[arch.family]),
            "postprocess": dict(POSTPROCESS[arch.family]), "source": source, "license": license_text}


def convert(checkpoint, out, name=None, source=None, license_text=None, architecture=None, allow_unused=False,
            trust=False, seed=0):
    """Import `checkpoint`, write `out` (.weights.h5) and the preset JSON beside it; returns (model, report)."""
    import json

    out = Path(out)
    if not out.name.endswith(WEIGHTS_SUFFIX):
        raise ValueError(f"--out must end with {WEIGHTS_SUFFIX} (Keras' weights format): {out}")
    model, arch, report = import_checkpoint(checkpoint, architecture, allow_unused, trust, seed)
    name = name or out.name[: -len(WEIGHTS_SUFFIX)]
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(out)
    meta = metadata(name, arch, model.inner_channels, source or f"converted from {Path(checkpoint).name} "
                    f"({arch.name}) with db_tf.tools.import_torch", license_text or "the checkpoint's own terms")
    json_path = out.with_name(name_stem(out) + ".json")
    json_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{arch.name}: copied {report.copied} tensors from {checkpoint} -> {out}, {json_path}")
    counters = [key for key in report.unused if key.endswith(".num_batches_tracked")]
    listed = [key for key in report.unused if key not in counters]
    if report.unused:
        print(f"unused checkpoint tensors: {', '.join(listed) or 'none'}"
              + (f" (and {len(counters)} BatchNorm num_batches_tracked counters)" if counters else ""))
    if not report.threshold_imported:
        print("the checkpoint has no threshold branch (trained without adaptive thresholds): the model's threshold "
              f"branch is freshly initialised (seed {seed}); inference does not use it")
    return model, report


def name_stem(out):
    return Path(out).name[: -len(WEIGHTS_SUFFIX)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="PyTorch .pth of a MhLiao/DB or MMOCR DBNet / DBNet++")
    parser.add_argument("--out", required=True, help="output .weights.h5; the preset .json is written beside it")
    parser.add_argument("--architecture", choices=sorted(ARCHITECTURES),
                        help="force the layout instead of detecting it from the tensor names")
    parser.add_argument("--name", help="model name in the JSON (default: from --out)")
    parser.add_argument("--source", help="provenance text for the JSON")
    parser.add_argument("--license", dest="license_text", help="license text for the JSON")
    parser.add_argument("--allow-unused", action="store_true",
                        help="import even when the checkpoint holds tensors no db-tf layer takes")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="unpickle the whole file (torch.load weights_only=False): only for trusted files")
    parser.add_argument("--seed", type=int, default=0, help="seed of a threshold branch the checkpoint lacks")
    args = parser.parse_args(argv)
    if not args.out.endswith(WEIGHTS_SUFFIX):
        parser.error(f"--out must end with {WEIGHTS_SUFFIX} (Keras' weights format): {args.out}")
    try:
        convert(args.checkpoint, args.out, args.name, args.source, args.license_text, args.architecture,
                args.allow_unused, args.trust_checkpoint, args.seed)
    except (ImportMismatch, FileNotFoundError, ImportError) as exc:
        sys.exit(f"import_torch: {args.checkpoint}: {exc}")


if __name__ == "__main__":
    main()
