"""Train a DBNet: `python train.py [--config db_config.py] [--set KEY=VALUE ...] [--init WEIGHTS]`.

Everything comes from the config (db_config.py documents each key). Rerunning the same command continues
the run in TRAIN.RUN_DIR from its last checkpoint. Examples:

    python train.py --set TRAIN.EPOCHS=1 TRAIN.STEPS_PER_EPOCH=2 TRAIN.BATCH_SIZE=2 DATA.IMAGE_SIZE=128
    python train.py --config my_config.py          # a copy of db_config.py with DATA.TRAIN / DATA.VAL set
    python train.py --config my_config.py --init ppocrv4_mobile --set TRAIN.OPTIMIZER=adam \\
        TRAIN.LR=0.001 TRAIN.WARMUP_STEPS=500      # fine-tune a shipped preset (its architecture + BGR input)
    python train.py --resume runs/db_r18 --time-limit 50   # continue for 50 minutes, checkpoint, stop
    tensorboard --logdir runs/db_r18/logs;  python -m db_tf.tools.plot_curves runs/db_r18
"""
import argparse
import sys

from db_tf.cli.common import positive_float, positive_int, start_tensorflow
from db_tf.config import ConfigError, add_config_args, config_from_args


def parse_args(argv=None, default_config=None, prog=None):
    summary, _, examples = __doc__.partition("\n\n")
    parser = argparse.ArgumentParser(prog=prog, description=summary, epilog=examples,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, default_config)
    parser.add_argument("--init", default=None, metavar="WEIGHTS",
                        help="start from these weights: a .weights.h5 (arrays matching by name and shape are "
                             "loaded, the rest is listed), or a pretrained name / .json (its architecture and "
                             "preprocessing are used). Default: cfg.MODEL.WEIGHTS. Ignored when resuming.")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR",
                        help="continue this run directory (must hold a checkpoint); default: TRAIN.RUN_DIR, "
                             "which resumes automatically when it holds one")
    parser.add_argument("--max-steps", type=positive_int, default=None,
                        help="stop this session after so many steps (checkpoint written; rerun to continue)")
    parser.add_argument("--time-limit", type=positive_float, default=None, metavar="MINUTES",
                        help="stop this session cleanly after so many minutes (checkpoint written)")
    parser.add_argument("--run-eagerly", action="store_true",
                        help="run the train step eagerly, without tf.function (debugging; slow)")
    parser.add_argument("--verbose", type=int, default=None, choices=(0, 1, 2),
                        help="Keras progress: 1 = bar, 2 = one line per epoch and TensorFlow's start-up "
                             "log (default: 1 on a terminal)")
    return parser.parse_args(argv)


def main(argv=None, default_config=None, prog=None):
    args = parse_args(argv, default_config, prog)
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    start_tensorflow(verbose=args.verbose == 2)
    from db_tf.training.run import TrainingError, train  # TensorFlow is imported from here on

    try:
        result = train(cfg, init=args.init, resume=args.resume, max_steps=args.max_steps,
                       time_limit=args.time_limit, verbose=args.verbose, run_eagerly=args.run_eagerly)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
