"""Start a local web page to try presets on your images and tune thresholds live.

    db-tf demo                                   # http://127.0.0.1:8000/, every shipped preset
    db-tf demo --port 8080 --preset runs/mine/   # also your own preset folder (selected first)

The page: drop or pick images, choose a preset, see boxes or polygons over the image beside the
probability, threshold and binary maps; the thresh, box_thresh and unclip sliders and the box / polygon
switch re-run only the post-processing on the cached maps. Downloads: detections.json and an ICDAR 2015
submission.zip. Binds to 127.0.0.1 unless --host says otherwise (the page has no authentication).
Stop it with Ctrl+C.
"""
import argparse
import sys
from pathlib import Path

from db_tf.cli.common import add_verbose_flag, positive_float, start_tensorflow


def port_number(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 (any free port) and 65535, got {text}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog="db-tf demo", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every "
                             "network interface, for anyone who can reach it)")
    parser.add_argument("--port", type=port_number, default=8000, help="port (default 8000; 0: any free port)")
    parser.add_argument("--preset", action="append", default=[], metavar="NAME_OR_FOLDER",
                        help="a preset to offer besides the shipped ones: a folder, a run's final.json or a "
                             "shipped name (repeatable; the first is selected when the page opens)")
    parser.add_argument("--max-upload-mb", type=positive_float, default=25,
                        help="largest image file accepted (default 25 MB)")
    parser.add_argument("--cache-mb", type=positive_float, default=768,
                        help="memory for decoded images and maps kept for the sliders (default 768 MB)")
    return add_verbose_flag(parser)


def preset_choices(extra):
    """label -> source: the --preset ones first, then the shipped ones. A folder is labelled by its name,
    a run's <dir>/<name>.json by "<dir>/<name>"; a label already taken gets a number."""
    from db_tf import presets

    shipped = presets.list_presets()
    choices = {}
    for source in extra:
        presets.resolve(source)   # a PresetError now, not later on the page
        label = preset_label(source, shipped)
        base, number = label, 1
        while label in choices or (label in shipped and label != source):
            number += 1
            label = f"{base} ({number})"
        choices[label] = source
    for name in shipped:
        choices.setdefault(name, name)
    return choices


def preset_label(source, shipped):
    from db_tf import presets

    path = Path(source).expanduser().resolve()
    if source in shipped:
        return source
    if path.is_dir():
        return path.name
    if path.name in (presets.CONFIG_FILE, presets.WEIGHTS_FILE):
        return path.parent.name
    return f"{path.parent.name}/{path.name.split('.')[0]}"


def main(argv=None):
    args = build_parser().parse_args(argv)
    from db_tf import presets
    from db_tf.demo.server import DemoApp, DemoServer

    try:
        choices = preset_choices(args.preset)
        default = next(iter(choices)) if args.preset else presets.default_preset()
    except presets.PresetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = DemoApp(choices, default=default, max_upload_bytes=int(args.max_upload_mb * 2**20),
                  cache_bytes=int(args.cache_mb * 2**20))
    try:
        server = DemoServer(app, args.host, args.port, verbose=args.verbose)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    start_tensorflow(args.verbose)
    print(f"db-tf demo: open {server.url}  (presets: {', '.join(choices)}; Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
