"""What a user of `db-tf demo` waits for: a new image (forward pass + post-processing) against a slider move
(post-processing on the cached maps), as HTTP round trips to a local demo server, and the server's own times.

    python bench/bench_demo.py                                   # ppocrv4_mobile, figures/demo.jpg
    python bench/bench_demo.py --preset ppocrv4_ic15 --image ../shared/data/icdar2015_train/imgs/img_901.jpg

Each repeat uploads the image under a new name (a new id, so the maps are not cached) and calls /api/detect,
then moves box_thresh with /api/postprocess; the two alternate (side by side in one run), after one warm-up
round. Medians are printed, and the slider's round trip as a fraction of the new image's.
"""
import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from db_tf.demo import DemoApp, serve_in_thread  # noqa: E402


def post(url, body, headers=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST")
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="ppocrv4_mobile")
    parser.add_argument("--image", default=str(Path(__file__).resolve().parent.parent / "figures" / "demo.jpg"))
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    data = Path(args.image).read_bytes()
    server = serve_in_thread(DemoApp({args.preset: args.preset}))
    base = server.url.rstrip("/")
    rows = {"new image (round trip)": [], "slider (round trip)": [], "forward (server)": [],
            "post-processing (server)": []}
    try:
        for repeat in range(args.repeats + 1):
            begin = time.perf_counter()
            image = post(f"{base}/api/images", data, {"X-File-Name": f"image{repeat}.jpg"})
            result = post(f"{base}/api/detect", {"id": image["id"], "preset": args.preset})
            new_image = (time.perf_counter() - begin) * 1000
            begin = time.perf_counter()
            tuned = post(f"{base}/api/postprocess", {"id": image["id"], "preset": args.preset,
                                                     "settings": {"box_thresh": 0.7 + 0.01 * repeat}})
            slider = (time.perf_counter() - begin) * 1000
            if repeat == 0:
                continue   # warm-up: the preset loads and traces on the first call
            rows["new image (round trip)"].append(new_image)
            rows["slider (round trip)"].append(slider)
            rows["forward (server)"].append(result["timings"]["forward_ms"])
            rows["post-processing (server)"].append(tuned["timings"]["postprocess_ms"])
    finally:
        server.shutdown()
        server.server_close()
    print(f"{args.preset} on {Path(args.image).name} ({result['image_size'][1]}x{result['image_size'][0]}, "
          f"{result['count']} texts), {args.repeats} repeats, medians:")
    medians = {name: statistics.median(values) for name, values in rows.items()}
    for name, value in medians.items():
        print(f"  {name:<26} {value:8.1f} ms")
    print(f"  slider / new image: {medians['slider (round trip)'] / medians['new image (round trip)']:.3f}")


if __name__ == "__main__":
    main()
