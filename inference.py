"""Detect text in an image or a folder of images: `python inference.py --help` (the same as `db-tf detect`).

A thin shim over db_tf/cli/detect.py whose --config defaults to db_config.py beside this file.
"""
import sys
from pathlib import Path

from db_tf.cli.detect import main

if __name__ == "__main__":
    sys.exit(main(default_config=Path(__file__).with_name("db_config.py")))
