"""Backbones: name -> builder(weights=None, name=...) returning a keras.Model images -> [C2, C3, C4, C5]."""
from db_tf.models.backbones.pplcnetv3 import pplcnetv3_x0_75
from db_tf.models.backbones.pplcnetv4 import pplcnetv4_small
from db_tf.models.backbones.resnet import (
                                           deform_resnet18,
                                           deform_resnet50,
                                           deform_resnet50_mmcv,
                                           keras_resnet50,
                                           resnet18,
                                           resnet34,
                                           resnet50,
)

BACKBONES = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "deform_resnet18": deform_resnet18,
    "deform_resnet50": deform_resnet50,
    "deform_resnet50_mmcv": deform_resnet50_mmcv,
    "keras_resnet50": keras_resnet50,
    "pplcnetv3_x0_75": pplcnetv3_x0_75,
    "pplcnetv4_small": pplcnetv4_small,
}
