"""db_tf.tools.package_weights: shipped-model files from a run, optionally the mean of checkpoints."""
import json

import numpy as np
import pytest

from db_tf.presets import load_preset
from db_tf.tools.package_weights import main

pytestmark = pytest.mark.slow   # not in the fast subset (python -m pytest -m "not slow")

TINY = {"backbone": "resnet18", "neck": "fpn", "inner_channels": 32}


def test_average_of_checkpoints_with_new_settings(tmp_path):
    from db_tf.models import DBNet

    model = DBNet(**TINY)
    run = tmp_path / "run"
    run.mkdir()
    model.save_weights(str(run / "best.weights.h5"))
    base = {"name": "best", "model": TINY, "preprocess": {"channel_order": "BGR", "short_side": 736},
            "postprocess": {"thresh": 0.3, "box_thresh": 0.4, "unclip_ratio": 1.5}, "source": "run X",
            "license": "L"}
    (run / "best.json").write_text(json.dumps(base))
    # two "checkpoints": every weight shifted by +1 and by +3 -> their mean is the original + 2
    originals = [np.asarray(v) for v in model.weights]
    checkpoints = []
    for shift in (1.0, 3.0):
        for variable, value in zip(model.weights, originals):
            variable.assign(value + shift)
        (run / f"ckpt{shift:g}").mkdir()
        model.save_weights(str(run / f"ckpt{shift:g}" / "model.weights.h5"))
        checkpoints.append(str(run / f"ckpt{shift:g}"))
    out = tmp_path / "weights"
    assert main(["--from", str(run / "best.json"), "--name", "mine", "--out-dir", str(out), "--average",
                 *checkpoints, "--short-side", "1152", "--box-thresh", "0.5", "--unclip", "1.3",
                 "--split-by-threshold"]) == 0
    shipped, meta = load_preset(out / "mine")
    for variable, value in zip(shipped.weights, originals):
        np.testing.assert_allclose(np.asarray(variable), value + 2.0, rtol=1e-6, atol=1e-5)
    assert meta["preprocess"]["short_side"] == 1152 and meta["preprocess"]["channel_order"] == "BGR"
    assert meta["postprocess"] == {"thresh": 0.3, "box_thresh": 0.5, "unclip_ratio": 1.3, "split_by_threshold": True}
    assert meta["source"] == "run X" and meta["license"] == "L" and meta["name"] == "mine"
    # without --average the weights are --from's own
    assert main(["--from", str(run / "best.json"), "--name", "plain", "--out-dir", str(out)]) == 0
    plain, plain_meta = load_preset(out / "plain")
    assert plain_meta["postprocess"]["split_by_threshold"] is False   # the schema's default
    for variable, value in zip(plain.weights, originals):
        np.testing.assert_array_equal(np.asarray(variable), value)
