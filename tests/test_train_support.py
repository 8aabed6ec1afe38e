"""Shared helpers of the training tests (imported by test_train_*.py and test_distributed.py).

Tracing DBNet's train step dominates the cost of a training test, so most of them use TINY_BACKBONE: five
strided convolutions with BatchNorm giving C2..C5 at strides 4..32, registered as MODEL.BACKBONE="tiny".
Subprocess tests run `tiny_train.py` (written by `write_tiny_train_script`), which registers it and then
runs train.py's main with the given arguments.
"""
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent

TINY_BACKBONE = textwrap.dedent('''
    import keras

    def tiny_backbone(weights=None, name="tiny"):
        """images -> [C2, C3, C4, C5] at strides 4, 8, 16, 32 with 8..16 channels (tests only)."""
        x = inputs = keras.Input((None, None, 3))
        features = []
        for i, channels in enumerate((8, 8, 12, 16, 16)):
            x = keras.layers.Conv2D(channels, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}")(x)
            x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
            x = keras.layers.ReLU(name=f"relu{i}")(x)
            if i >= 1:
                features.append(x)
        return keras.Model(inputs, features, name=name)
''')

TINY_OVERRIDES = ["MODEL.BACKBONE=tiny", "MODEL.INNER_CHANNELS=16", "DATA.IMAGE_SIZE=64", "TRAIN.BATCH_SIZE=2",
                  "DATA.SYNTH.NUM=64", "DATA.NUM_WORKERS=1", "TRAIN.IMAGE_EVERY=0", "TRAIN.LOG_EVERY=1000"]


def register_tiny_backbone():
    """Add "tiny" to BACKBONES in this process; returns the builder."""
    namespace = {}
    exec(TINY_BACKBONE, namespace)
    from db_tf.models.backbones import BACKBONES
    BACKBONES["tiny"] = namespace["tiny_backbone"]
    return namespace["tiny_backbone"]


def write_tiny_train_script(directory):
    path = Path(directory) / "tiny_train.py"
    path.write_text(f"import sys\nsys.path.insert(0, {str(REPO_ROOT)!r})\n{TINY_BACKBONE}\n"
                    "from db_tf.models.backbones import BACKBONES\nBACKBONES['tiny'] = tiny_backbone\n"
                    "import train\nsys.exit(train.main(sys.argv[1:]))\n")
    return path


def subprocess_env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def start(args, log_path, **env):
    """Start `python args...` with output to log_path; returns the Popen."""
    stream = open(log_path, "w")
    return subprocess.Popen([sys.executable, *map(str, args)], stdout=stream, stderr=subprocess.STDOUT,
                            env=subprocess_env(**env), cwd=str(REPO_ROOT))


def free_ports(count):
    """Distinct free TCP ports on 127.0.0.1 (bound then released; the OS does not hand them out again soon)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def test_tiny_backbone_has_the_backbone_contract():
    builder = register_tiny_backbone()
    model = builder()
    features = model(np.zeros((1, 64, 96, 3), np.float32))
    assert [tuple(f.shape[1:3]) for f in features] == [(16, 24), (8, 12), (4, 6), (2, 3)]
