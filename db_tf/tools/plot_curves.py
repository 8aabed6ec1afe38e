"""Loss curves of a training run as PNG figures (matplotlib), from its TensorBoard event files.

    python -m db_tf.tools.plot_curves runs/db_r18 [--out figures] [--smooth 0.9]
    python -m db_tf.tools.plot_curves runs/stage_a runs/stage_b --compare stages   # -> figures/stages.png

Writes `<out>/<run>_losses.png` (binarize_loss, thresh_loss, thresh_binary_loss and total_loss against
the training step; raw values thin, exponentially smoothed values thick), `<out>/<run>_lr.png` and, when
the run was validated, `<out>/<run>_validation.png` (precision, recall, hmean). With --compare NAME, one
figure `<out>/NAME.png` of the validation hmean of every run given instead, against each run's own step.
No tensorboard package needed.
"""
import argparse
import sys
from pathlib import Path

LOSS_TAGS = ("binarize_loss", "thresh_loss", "thresh_binary_loss", "total_loss")
VAL_TAGS = ("val_precision", "val_recall", "val_hmean")


def smooth(values, weight):
    """TensorBoard-style exponential moving average, debiased so the first points are not pulled to 0."""
    out, average = [], 0.0
    for count, value in enumerate(values, start=1):
        average = weight * average + (1.0 - weight) * value
        out.append(average / (1.0 - weight ** count) if weight > 0 else value)
    return out


def plot_run(run_dir, out_dir="figures", smoothing=0.9):
    """Write the figures of one run; returns the list of written paths."""
    plt = _pyplot()
    from db_tf.training.summaries import event_files, read_events

    run_dir = Path(run_dir)
    log_dir = _log_dir(run_dir)
    if not event_files(log_dir):
        raise FileNotFoundError(f"no TensorBoard event files under {log_dir}")
    scalars, _ = read_events(log_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = run_dir.resolve().name
    written = []

    losses = [tag for tag in LOSS_TAGS if tag in scalars]
    if losses:
        fig, axes = plt.subplots(2, 2, figsize=(11, 7), squeeze=False)
        for ax, tag in zip(axes.flat, LOSS_TAGS):
            ax.set_title(tag)
            ax.set_xlabel("step")
            if tag not in scalars:
                ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
                continue
            steps, values = zip(*scalars[tag])
            ax.plot(steps, values, color="tab:blue", alpha=0.3, linewidth=0.8)
            ax.plot(steps, smooth(values, smoothing), color="tab:blue", linewidth=1.8)
            ax.grid(alpha=0.3)
        fig.suptitle(f"{name}: training losses (smoothing {smoothing})")
        fig.tight_layout()
        written.append(_save(fig, out_dir / f"{name}_losses.png", plt))

    if "lr" in scalars:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        steps, values = zip(*scalars["lr"])
        ax.plot(steps, values, color="tab:orange")
        ax.set(title=f"{name}: learning rate", xlabel="step", ylabel="lr")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        written.append(_save(fig, out_dir / f"{name}_lr.png", plt))

    validated = [tag for tag in VAL_TAGS if tag in scalars]
    if validated:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for tag in validated:
            steps, values = zip(*scalars[tag])
            ax.plot(steps, values, marker="o", markersize=3, label=tag[len("val_"):])
        ax.set(title=f"{name}: validation", xlabel="step", ylim=(0, 1))
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        written.append(_save(fig, out_dir / f"{name}_validation.png", plt))
    if not written:
        raise ValueError(f"{log_dir}: the event files hold none of {LOSS_TAGS + ('lr',) + VAL_TAGS}")
    return written


def validation_series(run_dirs, tag="val_hmean"):
    """{run name: [(step, value), ...]} of one scalar for several runs; a run without it is a ValueError."""
    from db_tf.training.summaries import read_events

    series = {}
    for run_dir in map(Path, run_dirs):
        log_dir = _log_dir(run_dir)
        scalars, _ = read_events(log_dir)
        if tag not in scalars:
            raise ValueError(f"{log_dir}: no {tag} in its event files (was the run validated?)")
        series[run_dir.resolve().name] = scalars[tag]
    return series


def plot_comparison(run_dirs, out_path, tag="val_hmean"):
    """One figure of `tag` for several runs (e.g. the stages of a fine-tuning); returns (path, series)."""
    plt = _pyplot()
    series = validation_series(run_dirs, tag)
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, points in series.items():
        steps, values = zip(*points)
        ax.plot(steps, values, marker="o", markersize=3, label=name)
    ax.set(title=f"{tag[len('val_'):] if tag.startswith('val_') else tag} on validation", xlabel="step of the run")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    return _save(fig, Path(out_path), plt), series


def _log_dir(run_dir):
    """A run directory's logs/ folder, or the directory itself when it holds the event files."""
    return run_dir / "logs" if (run_dir / "logs").is_dir() else run_dir


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")   # files only, no display
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path, plt):
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description="Training curves of a run as PNG figures.")
    parser.add_argument("run_dirs", nargs="+", metavar="run_dir",
                        help="a run directory (with logs/) or a directory of event files")
    parser.add_argument("--compare", metavar="NAME",
                        help="one figure <out>/NAME.png comparing the validation hmean of the runs")
    parser.add_argument("--out", default="figures", help="output folder (default: figures)")
    parser.add_argument("--smooth", type=float, default=0.9, help="EMA smoothing weight in [0, 1)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.smooth < 1.0:
        parser.error("--smooth must be in [0, 1)")
    try:
        if args.compare:
            paths = [plot_comparison(args.run_dirs, Path(args.out) / f"{args.compare}.png")[0]]
        else:
            paths = [path for run_dir in args.run_dirs for path in plot_run(run_dir, args.out, args.smooth)]
    except (FileNotFoundError, ValueError) as exc:
        print(f"plot_curves: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
