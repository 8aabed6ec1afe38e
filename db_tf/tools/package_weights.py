"""Package trained weights as a preset folder <out-dir>/<name>/ (config.json, model.weights.h5, metadata.json).

    python -m db_tf.tools.package_weights --from runs/ppocrv4_ic15/best.json --name ppocrv4_ic15 \\
        --short-side 1152 --thresh 0.3 --box-thresh 0.5 --unclip 1.3 --source "..." --license "..."
    # the mean of several checkpoints of one run instead of one of them:
    python -m db_tf.tools.package_weights --from runs/ppocrv4_ic15/final.json --name ppocrv4_ic15 \\
        --average runs/ppocrv4_ic15/checkpoints/ckpt-00003200 runs/ppocrv4_ic15/checkpoints/ckpt-00003360 ...
    # an ensemble (db_tf.models.DBNetEnsemble: the mean of the models' maps) of shipped / trained models:
    python -m db_tf.tools.package_weights --from ppocrv4_ic15 runs/ppocrv6_ic15_stage2/final.json --name ens

Shipping a preset with db-tf: --out-dir db_tf/presets (the package data folder); default: the current folder.

--from is a preset (a name, a folder, or a run's best.json / final.json with its .weights.h5 beside it): it
gives the architecture, the preprocessing and, unless --average is given, the weights. --average takes
checkpoint directories (or .weights.h5 files) of the SAME architecture and writes the element-wise mean of
every weight (batch-norm statistics included), the usual "checkpoint averaging" of the last few checkpoints
of a run. Several --from models make an ensemble whose weights file holds all of theirs; they must share the
normalisation (channel order, mean, std), and the first one's preprocessing and post-processing are the
defaults. Post-processing settings and the test short side should be chosen on a validation split
(db_tf.tools.sweep_postprocess). The files are written without optimizer state.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from db_tf.cli.common import positive_float, positive_int, start_tensorflow, unit_interval


def checkpoint_weights_file(path):
    """A checkpoint directory (holding model.weights.h5) or a .weights.h5 file -> the weights file."""
    from db_tf.training.checkpoints import WEIGHTS_FILE

    path = Path(path)
    file = path / WEIGHTS_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no weights at {path} (expected a checkpoint directory or a .weights.h5 file)")
    return file


def average_into(model, paths):
    """Load each checkpoint into `model` in turn and leave the mean of all of them in it."""
    from db_tf.presets import load_weights

    total = None
    for path in paths:
        load_weights(model, checkpoint_weights_file(path))
        values = [np.asarray(v, np.float64) for v in model.weights]
        total = values if total is None else [t + v for t, v in zip(total, values)]
    for variable, summed in zip(model.weights, total):
        variable.assign((summed / len(paths)).astype(variable.dtype))
    return model


NORMALISATION_KEYS = ("channel_order", "mean", "std")


def load_models(bases, average=None):
    """-> (model, metadata to start from): one --from model (with --average: the mean of the checkpoints),
    or the DBNetEnsemble of several."""
    from db_tf.presets import load_preset

    if len(bases) == 1:
        model, base = load_preset(bases[0])
        return (average_into(model, average) if average else model), base
    if average:
        raise ValueError("--average takes checkpoints of one model: give a single --from with it")
    return ensemble_of([load_preset(base) for base in bases])


def ensemble_of(loaded):
    """[(DBNet, metadata), ...] -> (DBNetEnsemble holding copies of their weights, metadata)."""
    from db_tf.models import DBNetEnsemble

    first = loaded[0][1]
    for _, meta in loaded[1:]:
        different = [k for k in NORMALISATION_KEYS if meta["preprocess"][k] != first["preprocess"][k]]
        if different:
            raise ValueError(f"{meta['name']} normalises its input differently from {first['name']} ({different}): "
                             f"ensemble members share one input image")
    ensemble = DBNetEnsemble([model.get_config() for model, _ in loaded])
    for member, (model, _) in zip(ensemble.members, loaded):
        member.set_weights(model.get_weights())
    source = "mean of the maps of " + "; ".join(f"{meta['name']} ({meta.get('source', '')})" for _, meta in loaded)
    return ensemble, {**first, "model": {"members": ensemble.member_configs}, "source": source}


def metadata(base, name, args):
    preprocess = dict(base["preprocess"])
    if args.short_side:
        preprocess["short_side"] = args.short_side
    postprocess = dict(base["postprocess"])
    for key, value in (("thresh", args.thresh), ("box_thresh", args.box_thresh), ("unclip_ratio", args.unclip),
                       ("split_by_threshold", args.split_by_threshold)):
        if value is not None:
            postprocess[key] = value
    kept = {k: v for k, v in base.items() if k not in ("name", "model", "preprocess", "postprocess", "validation")}
    return {**kept, "name": name, "model": base["model"], "preprocess": preprocess, "postprocess": postprocess,
            "source": args.source or base.get("source", ""), "license": args.license or base.get("license", "")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="bases", nargs="+", required=True,
                        help="preset name / folder or a run's JSON (e.g. runs/X/best.json); several: an ensemble")
    parser.add_argument("--name", required=True)
    parser.add_argument("--out-dir", default=".", help="the preset folder is written to <out-dir>/<name>")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing preset folder")
    parser.add_argument("--average", nargs="+", help="checkpoint directories / .weights.h5 files to average")
    parser.add_argument("--short-side", type=positive_int)
    parser.add_argument("--thresh", type=unit_interval)
    parser.add_argument("--box-thresh", type=unit_interval)
    parser.add_argument("--unclip", type=positive_float)
    parser.add_argument("--split-by-threshold", action=argparse.BooleanOptionalAction, default=None,
                        help="cut candidates where the threshold map parts them (db_tf.postprocess.split_by_threshold)")
    parser.add_argument("--source", help="provenance text for the JSON (default: --from's)")
    parser.add_argument("--license", help="licence text for the JSON (default: --from's)")
    args = parser.parse_args(argv)
    start_tensorflow()

    from db_tf.presets import save_preset

    try:
        model, base = load_models(args.bases, args.average)
        meta = metadata(base, args.name, args)
        folder = save_preset(Path(args.out_dir) / args.name, model, meta, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as exc:   # PresetError too: the message names the file and the problem
        parser.error(str(exc))
    print(f"wrote preset {folder}" + (f" (mean of {len(args.average)} checkpoints)" if args.average else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
