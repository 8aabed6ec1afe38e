"""What every db-tf command shares: checked argument types and a quiet TensorFlow start.

Argument types turn a bad value into argparse's single ``error:`` line and exit status 2, before any
model is loaded. ``start_tensorflow`` imports TensorFlow with its start-up INFO lines (the oneDNN notice,
the CPU-feature notice, absl's "before InitializeLog" banner) filtered out of stderr; TensorFlow's
warnings and errors still pass, and ``--verbose`` shows everything.
"""
import argparse
import os
import re
import sys
import tempfile

# Lines TensorFlow writes to stderr while it is imported that carry no warning: absl's banner and
# INFO-level (I...) log lines such as "oneDNN custom operations are on" and the CPU-feature notice.
STARTUP_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
                           r"|I\d{4} [\d:. ]+\d+ \S+:\d+\]"
                           r"|To enable the following instructions:)")


def start_tensorflow(verbose=False):
    """Import TensorFlow (once), hiding its start-up INFO lines unless ``verbose``; returns the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        import tensorflow
        return tensorflow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # C++ INFO off; warnings and errors stay
    with _stderr_filtered(STARTUP_NOISE):
        import tensorflow
    return tensorflow


class _stderr_filtered:
    """Capture file descriptor 2 (C++ code writes there directly), then replay the lines that do not match."""

    def __init__(self, pattern):
        self.pattern = pattern

    def __enter__(self):
        sys.stderr.flush()
        self.capture = tempfile.TemporaryFile(mode="w+b")
        self.saved = os.dup(2)
        os.dup2(self.capture.fileno(), 2)
        return self

    def __exit__(self, *exc_info):
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.capture.seek(0)
        text = self.capture.read().decode("utf-8", "replace")
        self.capture.close()
        kept = [line for line in text.splitlines(keepends=True) if not self.pattern.match(line)]
        if kept:
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
        return False


def add_verbose_flag(parser):
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up log lines")
    return parser


# ------------------------------------------------------------------------------------ argument types
def _number(kind, text):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None


def positive_int(text):
    value = _number(int, text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text):
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text):
    value = _number(float, text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def unit_interval(text):
    """A probability-like threshold in [0, 1]."""
    value = _number(float, text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value
