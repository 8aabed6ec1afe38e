"""Cost and answer size of the SavedModel's in-graph boxes ("boxes") against the maps ("serving_default").

    python bench/bench_boxes_signature.py                       # shipped ppocrv4_mobile, one 1280x720 photo
    python bench/bench_boxes_signature.py --weights ppocrv4_ic15 --repeats 10
    python bench/bench_boxes_signature.py --image ../shared/data/icdar2015_train/imgs/img_984.jpg  # 62 texts

The model is exported (export.py's code) to a temporary folder and loaded back. One 1280x720 JPEG
(ICDAR 2015 img_901 from ../shared when present, else a synthetic text image of db_tf.synth) goes to
both signatures; at short side 736 the network runs at 736x1280. Timed side by side in one run, the two
signatures alternating (--repeats calls each after --warmup), medians printed:
    maps    serving_default: decode + resize + network (the forward pass a client waits for today)
    boxes   the same + connected components, rectangles, scores and unclip in the graph
    python  db_tf.postprocess on the served map (what db_tf.serving does on the client), for reference
The extra time of "boxes" is reported as a fraction of "maps".

Answer sizes for that image: REST JSON as TF Serving's row format ({"predictions": [...]}, float32 values
written in their shortest round-trip form, so a lower bound for the maps) and gRPC PredictResponse
serialized bytes (tensor protos as tf.make_tensor_proto builds them).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from db_tf.detector import POSTPROCESS_KEYS, TextDetector  # noqa: E402
from db_tf.export import export  # noqa: E402
from db_tf.serving import ServedMaps, detections  # noqa: E402

IMAGE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "icdar2015_train" / "imgs" / "img_901.jpg"


def photo(path=None):
    """JPEG bytes of a 1280x720 photo (``path``, else the IC15 image when present, else synthetic text)."""
    if path:
        return Path(path).read_bytes(), Path(path).name
    if IMAGE.is_file():
        return IMAGE.read_bytes(), str(IMAGE.name)
    from db_tf import synth

    image = synth.generate(0, height=720, width=1280).image
    return cv2.imencode(".jpg", image[..., ::-1])[1].tobytes(), "synthetic"


def rest_json_bytes(outputs):
    """Size of TF Serving's row-format JSON answer for one image (float32 in shortest form)."""
    def plain(value):
        value = np.asarray(value)
        if value.dtype.kind == "f":
            return json.loads(np.array2string(value, separator=",", threshold=sys.maxsize, max_line_width=sys.maxsize,
                                              formatter={"float_kind": lambda v: np.format_float_positional(
                                                  np.float32(v), unique=True, trim="-")}))
        return value.tolist()
    body = {"predictions": [{name: plain(value[0]) for name, value in outputs.items()}]}
    return len(json.dumps(body, separators=(",", ":")))


def grpc_bytes(outputs):
    from tensorflow_serving.apis import predict_pb2

    response = predict_pb2.PredictResponse()
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(value)))
    return response.ByteSize()


def time_alternating(calls, warmup, repeats):
    for call in calls.values():
        for _ in range(warmup):
            call()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="ppocrv4_mobile")
    parser.add_argument("--short-side", type=int, default=736)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--image", help="another image file to send (default: IC15 img_901, else synthetic)")
    args = parser.parse_args()
    detector = TextDetector(weights=args.weights, short_side=args.short_side)
    settings = detector.settings
    data, source = photo(args.image)
    batch = tf.constant([data])
    with tempfile.TemporaryDirectory() as folder:
        path = export(detector.model, settings, folder, fmt="saved_model", version=1, name=args.weights)[0]
        loaded = tf.saved_model.load(str(path))
        maps_fn, boxes_fn = loaded.signatures["serving_default"], loaded.signatures["boxes"]
        maps = {k: v.numpy() for k, v in maps_fn(image_bytes=batch).items()}
        boxes = {k: v.numpy() for k, v in boxes_fn(image_bytes=batch).items()}
        (rh, rw), original = maps["resized_size"][0], tuple(maps["original_size"][0])
        threshold = maps["threshold"][0, :rh, :rw, 0] if "threshold" in maps else None
        served = ServedMaps(maps["probability"][0, :rh, :rw, 0], original, (rh, rw), threshold)
        post_settings = {k: settings[k] for k in POSTPROCESS_KEYS}
        medians = time_alternating({"maps": lambda: maps_fn(image_bytes=batch)["probability"].numpy(),
                                    "boxes": lambda: boxes_fn(image_bytes=batch)["boxes"].numpy(),
                                    "python": lambda: detections(served, **post_settings)},
                                   args.warmup, args.repeats)
    print(f"{args.weights}, {source} {original[1]}x{original[0]} -> network {rw}x{rh}, "
          f"{int(boxes['num_boxes'][0])} boxes in the graph, {len(detections(served, **post_settings))} in Python; "
          f"{os.cpu_count()} CPUs, median of {args.repeats}")
    for name, seconds in medians.items():
        print(f"  {name:7s} {seconds * 1000:8.1f} ms")
    extra = medians["boxes"] - medians["maps"]
    print(f"  in-graph boxes add {extra * 1000:.1f} ms = {extra / medians['maps']:.1%} of the maps call")
    print("answer size for this image:")
    for name, outputs in (("serving_default (maps)", maps), ("boxes", boxes)):
        try:
            grpc = f"{grpc_bytes(outputs):,} B"
        except ImportError:
            grpc = "n/a (tensorflow-serving-api not installed)"
        print(f"  {name:24s} REST JSON {rest_json_bytes(outputs):>12,} B   gRPC {grpc}")


if __name__ == "__main__":
    main()
