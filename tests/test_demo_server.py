"""`db-tf demo`'s HTTP API without a browser: a server on a free local port in a thread, driven with urllib.

The detector is a TextDetector around a per-pixel fake model (probability = the red channel), so the
expected detections come from TextDetector.detect on the same bytes, and rectangles of different
brightness give a known number of texts per box_thresh. The real preset runs in test_demo_browser.py.
"""
import fnmatch
import io
import json
import socket
import urllib.error
import urllib.request
import zipfile

import cv2
import numpy as np
import pytest

from db_tf import TextDetector
from db_tf.cli import demo as demo_cli
from db_tf.demo import DemoApp, serve_in_thread
from db_tf.demo.server import STATIC_DIR, ByteBudgetCache

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class RedModel:
    """probability = the red channel in [0, 1] (the normalisation undone), threshold 0.3, binary = P / 2."""

    def __call__(self, images, training=False, return_maps=False):
        red = np.clip(np.asarray(images)[..., :1] * STD[0] + MEAN[0], 0.0, 1.0).astype(np.float32)
        if return_maps:
            return {"probability": red, "threshold": np.full_like(red, 0.3), "binary": red * 0.5}
        return red


def rectangles_png(height=240, width=320):
    """Three rectangles, red 255, 200 and 140 -> box scores about 1.0, 0.78 and 0.55."""
    image = np.zeros((height, width, 3), np.uint8)
    for (x0, y0, x1, y1), red in zip([(20, 20, 150, 50), (20, 100, 200, 130), (30, 170, 280, 200)], (255, 200, 140)):
        image[y0:y1, x0:x1] = (red, 40, 40)
    return cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()


@pytest.fixture(scope="module")
def detector():
    return TextDetector(model=RedModel(), short_side=128, max_side=0, box_thresh=0.5)


@pytest.fixture(scope="module")
def server(detector):
    app = DemoApp({"red": detector}, max_upload_bytes=200_000, cache_bytes=64 * 2**20)
    running = serve_in_thread(app)
    yield running
    running.shutdown()
    running.server_close()


def call(server, path, body=None, headers=None):
    """(status, parsed JSON or raw bytes) of a request; a 4xx / 5xx is returned, not raised."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(server.url.rstrip("/") + path, data=data, headers=headers or {},
                                     method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, kind, content = response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as error:
        status, kind, content = error.code, error.headers.get("Content-Type"), error.read()
    return status, json.loads(content) if kind == "application/json" else content


def upload(server, data, name="rects.png"):
    status, info = call(server, "/api/images", data, {"X-File-Name": name})
    assert status == 200, info
    return info["id"]


def polygons_of(result):
    return [np.asarray(p).tolist() for p in result["polygons"]]


def test_detect_then_sliders_equal_text_detector_without_a_new_forward_pass(server, detector):
    data = rectangles_png()
    image_id = upload(server, data)
    status, result = call(server, "/api/detect", {"id": image_id, "preset": "red"})
    expected = detector.detect(data)
    assert status == 200 and result["count"] == len(expected) == 3
    assert polygons_of(result) == [p.astype(int).tolist() for p in expected.polygons]
    assert result["settings"]["box_thresh"] == 0.5 and result["timings"]["forward_ms"] > 0
    passes = server.app.forward_passes

    for settings in ({"box_thresh": 0.7}, {"box_thresh": 0.9}, {"thresh": 0.6, "box_thresh": 0.2},
                     {"polygon": True, "poly_unclip_ratio": 1.2}, {"unclip_ratio": 3.0}):
        status, tuned = call(server, "/api/postprocess", {"id": image_id, "preset": "red", "settings": settings})
        reference = detector.detect(data, **settings)
        assert status == 200 and tuned["count"] == len(reference)
        assert polygons_of(tuned) == [p.astype(int).tolist() for p in reference.polygons]
        assert tuned["timings"]["forward_ms"] is None
    assert [len(detector.detect(data, box_thresh=t)) for t in (0.7, 0.9)] == [2, 1]   # the sliders change counts
    assert server.app.forward_passes == passes                       # no forward pass for the sliders


def test_maps_are_served_as_grey_png(server, detector):
    data = rectangles_png()
    image_id = upload(server, data)
    _, result = call(server, "/api/detect", {"id": image_id, "preset": "red"})
    (maps,) = detector.predict_maps([cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), 1), cv2.COLOR_BGR2RGB)],
                                    return_maps=True)
    for name in ("probability", "threshold", "binary"):
        status, png = call(server, result["maps"][name])
        grey = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        assert status == 200 and grey.shape == maps[name].shape
        np.testing.assert_array_equal(grey, np.floor(maps[name] * 255 + 0.5).astype(np.uint8))  # half up
    _, png = call(server, result["maps"]["bitmap"] + "&thresh=0.7")
    bitmap = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(bitmap > 0, maps["probability"] > 0.7)
    status, jpeg = call(server, f"/api/image?id={image_id}")
    assert status == 200 and cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1).shape == (240, 320, 3)


def test_reduced_jpeg_decode_is_scaled_back_like_text_detector(detector):
    """A JPEG over the pixel limit is decoded at 1/2; the boxes come back in the file's pixel frame."""
    image = cv2.imdecode(np.frombuffer(rectangles_png(480, 640), np.uint8), 1)
    image = cv2.resize(image, (640, 480), interpolation=cv2.INTER_NEAREST)
    data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    app = DemoApp({"red": detector}, max_pixels=100_000)   # 640 x 480 = 307,200 pixels: decoded at 320 x 240
    info = app.add_image(data, "big.jpg")
    assert (info["height"], info["width"]) == (480, 480 * 4 // 3)
    result = app.detect(info["id"], "red")
    saved, detector.max_pixels = detector.max_pixels, 100_000
    try:
        expected = detector.detect(data)
    finally:
        detector.max_pixels = saved
    assert result["image_size"] == [480, 640] and result["count"] == len(expected) > 0
    assert polygons_of(result) == [p.astype(int).tolist() for p in expected.polygons]


def test_too_many_pixels_is_refused_with_the_file_name(detector):
    from db_tf.data.image_io import ImageReadError

    app = DemoApp({"red": detector}, max_pixels=10_000)
    with pytest.raises(ImageReadError, match=r"big\.png: image is 320x240 \(76,800 pixels\), more than the limit"):
        app.add_image(rectangles_png(), "folder/big.png")


def test_bad_requests_get_a_message_and_the_server_keeps_serving(server):
    cases = [
        ("/api/images", b"this is not an image", 400, "not a usable image"),
        ("/api/images", b"", 400, "is empty"),
        ("/api/detect", b"{not json", 400, "not valid JSON"),
        ("/api/detect", {"id": "nothing", "preset": "red"}, 404, "not on the server"),
        ("/api/nowhere", {"id": "x"}, 404, "no API"),
    ]
    image_id = upload(server, rectangles_png(), "other.png")
    cases += [
        ("/api/detect", {"id": image_id, "preset": "ppocr_huge"}, 400, "unknown preset 'ppocr_huge'; known: red"),
        ("/api/detect", {"id": image_id, "preset": "red", "settings": {"box_thresh": 2}}, 400,
         "box_thresh must be a number between 0 and 1"),
        ("/api/detect", {"id": image_id, "preset": "red", "settings": {"dilate": True}}, 400, "unknown settings"),
        ("/api/detect", {"id": image_id, "preset": "red", "settings": {"polygon": "yes"}}, 400, "true or false"),
        ("/api/postprocess", {"id": image_id, "preset": "red"}, 409, "no longer cached"),
        ("/api/export", {"format": "pdf", "items": []}, 400, "format 'json' or 'icdar'"),
    ]
    for path, body, status, message in cases:
        got, answer = call(server, path, body, {"X-File-Name": "bad.png"} if path == "/api/images" else None)
        assert got == status and message in answer["error"], (path, answer)
        assert call(server, "/api/presets")[0] == 200
    assert call(server, "/static/../server.py")[0] == 404


def raw_request(server, head):
    """Send request headers only (as a client about to stream a body would) -> the reply as text."""
    with socket.create_connection(server.server_address[:2], timeout=10) as connection:
        connection.sendall(head)
        return connection.makefile("rb").read().decode()


def test_body_size_is_checked_before_reading_it(server):
    """Over the limit or without Content-Length: refused from the headers alone, nothing is read."""
    reply = raw_request(server, b"POST /api/images HTTP/1.0\r\nContent-Length: 300000\r\n\r\n")
    assert reply.startswith("HTTP/1.0 413") and "0.3 MB, more than the limit of 0.2 MB" in reply
    reply = raw_request(server, b"POST /api/detect HTTP/1.0\r\nContent-Length: 5000000\r\n\r\n")
    assert reply.startswith("HTTP/1.0 413") and "the request is 4.8 MB" in reply
    reply = raw_request(server, b"POST /api/images HTTP/1.0\r\nX-File-Name: a.png\r\n\r\nabc")
    assert reply.startswith("HTTP/1.0 411") and "Content-Length" in reply
    reply = raw_request(server, b"GET /api/presets HTTP/1.0\r\nHost: rebound.example:8000\r\n\r\n")
    assert reply.startswith("HTTP/1.0 403") and "its own address" in reply
    port = server.server_address[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        assert raw_request(server, f"GET /api/presets HTTP/1.0\r\nHost: {host}\r\n\r\n".encode()).startswith(
            "HTTP/1.0 200")
    assert call(server, "/api/presets")[0] == 200


def test_export_json_and_icdar_zip(server, detector):
    data = rectangles_png()
    first, second = upload(server, data, "scene.png"), upload(server, data, "dir/scene.jpg")
    items = [{"id": first, "preset": "red"}, {"id": second, "preset": "red", "settings": {"box_thresh": 0.9}}]
    status, content = call(server, "/api/export", {"format": "json", "items": items})
    assert status == 200
    assert content == {"scene.png": {"name": "scene.png", **detector.detect(data).to_json()},
                       "scene.jpg": {"name": "scene.jpg", **detector.detect(data, box_thresh=0.9).to_json()}}
    status, archive = call(server, "/api/export", {"format": "icdar", "items": items})
    with zipfile.ZipFile(io.BytesIO(archive)) as files:
        assert files.namelist() == ["res_scene.png.txt", "res_scene.jpg.txt"]   # as inference.py names them
        assert files.read("res_scene.png.txt").decode() == detector.detect(data).to_icdar()
        assert files.read("res_scene.jpg.txt").decode() == detector.detect(data, box_thresh=0.9).to_icdar()


def test_page_is_served_and_needs_no_network(server):
    status, page = call(server, "/")
    assert status == 200 and b'<script src="/static/app.js">' in page
    for name in ("app.js", "style.css"):
        assert call(server, f"/static/{name}")[0] == 200
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        for marker in ('src="http', "src='http", 'href="http', "url(http", "fetch(\"http", "import "):
            assert marker not in text, (path.name, marker)


def test_static_files_are_package_data(repo_root):
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    patterns = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["db_tf"]
    for path in STATIC_DIR.iterdir():
        relative = path.relative_to(repo_root / "db_tf").as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


def test_byte_budget_cache_evicts_least_recently_used():
    cache = ByteBudgetCache(max_bytes=10)
    cache.put("a", 1, 4)
    cache.put("b", 2, 4)
    assert cache.get("a") == 1          # a is now the most recent
    cache.put("c", 3, 4)                # 12 bytes > 10: b goes
    assert (cache.get("b"), cache.get("a"), cache.get("c"), cache.total_bytes()) == (None, 1, 3, 8)
    cache.put("huge", 4, 100)           # alone over budget: kept, everything else goes
    assert len(cache) == 1 and cache.get("huge") == 4


def test_cli_options_and_preset_labels(tmp_path, capsys):
    assert demo_cli.main(["--preset", str(tmp_path / "missing")]) == 2
    assert "no preset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        demo_cli.build_parser().parse_args(["--port", "70000"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert demo_cli.main(["--port", str(taken.getsockname()[1])]) == 2
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model": {"backbone": "resnet18"}}))
    run = tmp_path / "run" / "final.json"
    run.parent.mkdir()
    run.write_text("{}")
    choices = demo_cli.preset_choices([str(folder), str(run), str(folder / "config.json")])
    assert list(choices)[:3] == ["mine", "run/final", "mine (2)"]
    assert choices["ppocrv4_mobile"] == "ppocrv4_mobile"
    assert choices["mine"] == str(folder)


@pytest.mark.slow
def test_db_tf_demo_command_prints_its_url_and_serves(repo_root):
    """The real command: `python -m db_tf demo --port 0` prints the URL it listens on, and the page is there."""
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "db_tf", "demo", "--port", "0"], cwd=repo_root,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("db-tf demo: open http://127.0.0.1:"), (line, process.stderr.read()
                                                                      if process.poll() is not None else "")
        url = line.split()[3]
        with urllib.request.urlopen(url + "api/presets", timeout=30) as response:
            listing = json.loads(response.read())
        assert listing["default"] == "ppocrv4_mobile"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert b"db-tf demo" in response.read()
    finally:
        process.terminate()
        process.wait(timeout=30)
