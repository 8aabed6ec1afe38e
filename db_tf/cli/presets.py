"""`db-tf presets`: the shipped presets, what they are and how they scored on validation."""
import argparse
import json
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="db-tf presets", description=__doc__.split("\n")[0].strip("`"))
    parser.add_argument("--json", action="store_true", help="print the metadata of every preset as JSON")
    args = parser.parse_args(argv)
    from db_tf import presets

    metadata = {name: presets.read_metadata(name) for name in presets.list_presets()}
    if args.json:
        print(json.dumps(metadata, indent=2))
        return 0
    width = max(map(len, metadata), default=0)
    for name, meta in metadata.items():
        score = meta.get("validation", {})
        hmean = f"ICDAR 2015 val H {score['hmean']:.3f}" if "hmean" in score else ""
        default = " (default)" if name == presets.defaults.DEFAULT_PRESET else ""
        print(f"{name:<{width}}  {hmean:<22}  {meta.get('description', '')}{default}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
