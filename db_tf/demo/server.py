"""The `db-tf demo` web server: try presets on your own images and tune the post-processing live.

Standard library only (http.server). The page (static/) uploads an image once, asks for one forward pass
per (image, preset), and re-runs only the post-processing on the cached maps when a slider moves.

    POST /api/images          body: the encoded image file (header X-File-Name: its name, URL-encoded)
                              -> {"id", "name", "width", "height"}
    POST /api/detect          {"id", "preset", "settings"?} -> a result (forward pass unless the maps are cached)
    POST /api/postprocess     the same, on the cached maps only (409 when they were evicted)
    POST /api/export          {"format": "json" | "icdar", "items": [{"id", "preset", "settings"?}, ...]}
                              -> detections.json, or submission.zip of res_<stem>.txt (ICDAR 2015)
    GET  /api/presets         the presets on offer and the default one
    GET  /api/image?id=       the decoded image (JPEG) the detections refer to
    GET  /api/map?id=&preset=&name=   a map as grey PNG: probability, threshold, binary (the network's), or
                              bitmap (&thresh=: probability > thresh, what the boxes are traced from)

A result: {"id", "preset", "name", "image_size": [h, w], "count", "polygons", "scores", "settings",
"timings": {"forward_ms" (null when the maps were cached), "postprocess_ms"}, "maps": {name: url}}.
Errors are HTTP 4xx with {"error": message}; the server keeps serving. Request bodies are bounded by
Content-Length before anything is read; decoded images and maps live in a cache bounded in bytes.
"""
import hashlib
import io
import json
import sys
import threading
import time
import traceback
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, quote, unquote, urlsplit

import cv2
import numpy as np

from db_tf.data import image_io
from db_tf.output_names import output_stems

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8"}
MAX_UPLOAD_BYTES = 25 * 2**20     # one encoded image file
MAX_JSON_BYTES = 2**20            # API requests other than uploads
MAX_PIXELS = 40_000_000           # larger JPEGs are decoded reduced (as TextDetector does), others refused
CACHE_BYTES = 768 * 2**20         # decoded images + maps kept for the sliders
# the settings the page tunes; everything else stays the preset's
TUNABLE = ("thresh", "box_thresh", "unclip_ratio", "poly_unclip_ratio", "polygon")
MAP_NAMES = ("probability", "threshold", "binary", "bitmap")


class DemoError(Exception):
    """A request the demo refuses: an HTTP status and a message for the page."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = int(status)
        self.message = message


class ByteBudgetCache:
    """A thread-safe LRU bounded by the summed sizes of its values (the newest entry is always kept)."""

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self._items = OrderedDict()   # key -> (value, nbytes)
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key][0]

    def put(self, key, value, nbytes):
        with self._lock:
            self._items.pop(key, None)
            self._items[key] = (value, int(nbytes))
            while len(self._items) > 1 and self.total_bytes() > self.max_bytes:
                self._items.popitem(last=False)

    def total_bytes(self):
        return sum(size for _, size in self._items.values())

    def __len__(self):
        return len(self._items)


@dataclass
class Upload:
    name: str
    image: np.ndarray     # RGB uint8 as TextDetector decodes it (possibly reduced)
    scale: tuple          # original size / decoded size, (sy, sx)
    original_size: tuple  # (height, width) of the file


class DemoApp:
    """The demo's state and operations, independent of HTTP (the handler below only translates).

    presets: label -> a preset source (name, folder, run .json) or an already built TextDetector.
    Detectors load on first use; one lock serialises loading and forward passes (one model at a time on
    the CPU), post-processing runs outside it.
    """

    def __init__(self, presets, default=None, max_upload_bytes=MAX_UPLOAD_BYTES, max_pixels=MAX_PIXELS,
                 cache_bytes=CACHE_BYTES):
        if not presets:
            raise ValueError("the demo needs at least one preset")
        self.presets = dict(presets)
        self.default = default if default is not None else next(iter(self.presets))
        if self.default not in self.presets:
            raise ValueError(f"default preset {self.default!r} is not among {sorted(self.presets)}")
        self.max_upload_bytes = max_upload_bytes
        self.max_pixels = max_pixels
        self.uploads = ByteBudgetCache(cache_bytes // 2)
        self.maps = ByteBudgetCache(cache_bytes // 2)
        self.forward_passes = 0
        self._detectors = {}
        self._model_lock = threading.Lock()

    # ------------------------------------------------------------------------------------ presets
    def preset_list(self):
        from db_tf import presets

        listed = []
        for label, source in self.presets.items():
            description = ""
            if isinstance(source, (str, Path)):
                try:
                    description = presets.read_metadata(source).get("description", "")
                except presets.PresetError as exc:
                    description = f"(cannot read: {exc})"
            listed.append({"label": label, "description": description})
        return {"presets": listed, "default": self.default, "max_upload_bytes": self.max_upload_bytes}

    def detector(self, label):
        if label not in self.presets:
            raise DemoError(HTTPStatus.BAD_REQUEST, f"unknown preset {label!r}; known: {', '.join(self.presets)}")
        with self._model_lock:
            if label not in self._detectors:
                source = self.presets[label]
                if isinstance(source, (str, Path)):
                    from db_tf.detector import TextDetector

                    source = TextDetector.from_preset(source)
                # trace the forward graph now (shape-independent), so the forward times shown are the model's
                source.predict_maps([np.zeros((64, 64, 3), np.uint8)], return_maps=True)
                self._detectors[label] = source
            return self._detectors[label]

    # ------------------------------------------------------------------------------------ images
    def add_image(self, data, name):
        """Decode an uploaded file (bounded as TextDetector bounds it) -> its id; ImageReadError if bad."""
        name = safe_name(name)
        image, scale = image_io.decode_image_bounded(bytes(data), name, self.max_pixels)
        original = tuple(int(round(n * s)) for n, s in zip(image.shape[:2], scale))
        upload_id = hashlib.sha256(bytes(data)).hexdigest()[:20] + "-" + hashlib.sha256(name.encode()).hexdigest()[:6]
        self.uploads.put(upload_id, Upload(name, image, scale, original), image.nbytes)
        return {"id": upload_id, "name": name, "height": original[0], "width": original[1]}

    def upload(self, upload_id):
        found = self.uploads.get(upload_id)
        if found is None:
            raise DemoError(HTTPStatus.NOT_FOUND, f"image {upload_id!r} is not on the server (any more): add it again")
        return found

    def image_jpeg(self, upload_id):
        image = self.upload(upload_id).image
        encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
        return encoded.tobytes()

    # ------------------------------------------------------------------------------------ detection
    def detect(self, upload_id, label, settings=None, forward=True):
        """A result dict (see the module doc). forward=False: only from cached maps (DemoError 409 if none)."""
        upload = self.upload(upload_id)
        detector = self.detector(label)
        overrides = checked_settings(detector, settings)
        maps, forward_ms = self._maps(upload_id, label, forward)
        begin = time.perf_counter()
        result = self.postprocess(detector, upload, maps, overrides)
        postprocess_ms = (time.perf_counter() - begin) * 1000
        applied = {key: detector.settings[key] for key in TUNABLE} | overrides
        query = f"id={quote(upload_id)}&preset={quote(label)}"
        return {"id": upload_id, "preset": label, "name": upload.name, "image_size": list(result.image_size),
                "count": len(result), **result.to_json(), "settings": applied,
                "timings": {"forward_ms": forward_ms, "postprocess_ms": postprocess_ms},
                "maps": {name: f"/api/map?{query}&name={name}" for name in MAP_NAMES
                         if name in maps or name == "bitmap"}}

    def _maps(self, upload_id, label, forward=True):
        """(maps, forward time in ms or None when cached) of an image under a preset; a forward pass if needed."""
        maps = self.maps.get((upload_id, label))
        if maps is not None:
            return maps, None
        if not forward:
            raise DemoError(HTTPStatus.CONFLICT, "the maps of this image are no longer cached: detect again")
        upload, detector = self.upload(upload_id), self.detector(label)
        with self._model_lock:
            begin = time.perf_counter()
            (maps,) = detector.predict_maps([upload.image], return_maps=True)
            self.forward_passes += 1
            forward_ms = (time.perf_counter() - begin) * 1000
        self.maps.put((upload_id, label), maps, sum(m.nbytes for m in maps.values()))
        return maps, forward_ms

    @staticmethod
    def postprocess(detector, upload, maps, overrides):
        """TextDetector's post-processing, in the file's pixel frame (as TextDetector.detect returns it)."""
        result = detector.postprocess(maps, upload.image.shape[:2], **overrides)
        if upload.scale != (1.0, 1.0):
            result = result.rescaled(upload.scale, upload.original_size)
        return result

    def detections(self, upload_id, label, settings=None):
        """The Detections object of a cached (or newly computed) result, for the exports."""
        upload, detector = self.upload(upload_id), self.detector(label)
        overrides = checked_settings(detector, settings)
        maps, _ = self._maps(upload_id, label)
        return upload, self.postprocess(detector, upload, maps, overrides)

    def map_png(self, upload_id, label, name, thresh=None):
        maps = self.maps.get((upload_id, label))
        if maps is None:
            raise DemoError(HTTPStatus.NOT_FOUND, "the maps of this image are no longer cached: detect again")
        if name == "bitmap":
            level = self.detector(label).settings["thresh"] if thresh is None else _unit(thresh, "thresh")
            values = (maps["probability"] > level).astype(np.float32)
        elif name in maps:
            values = maps[name]
        else:
            raise DemoError(HTTPStatus.NOT_FOUND, f"no map {name!r}; this model has {', '.join(maps)}")
        grey = np.clip(np.nan_to_num(values) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return cv2.imencode(".png", grey)[1].tobytes()

    def export(self, fmt, items):
        """(file name, content type, bytes) of the detections of several results."""
        if fmt not in ("json", "icdar") or not isinstance(items, list) or not items:
            raise DemoError(HTTPStatus.BAD_REQUEST, "export needs format 'json' or 'icdar' and a list of items")
        named = []
        for item in items:
            if not isinstance(item, dict):
                raise DemoError(HTTPStatus.BAD_REQUEST, "each export item is an object {id, preset, settings}")
            named.append(self.detections(item.get("id"), item.get("preset"), item.get("settings")))
        stems = output_stems([upload.name for upload, _ in named])
        if fmt == "json":
            content = {stem: {"name": upload.name, **result.to_json()}
                       for stem, (upload, result) in zip(stems, named)}
            return "detections.json", "application/json", json.dumps(content, indent=1).encode()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for stem, (_, result) in zip(stems, named):
                archive.writestr(f"res_{stem}.txt", result.to_icdar())
        return "submission.zip", "application/zip", buffer.getvalue()


# ---------------------------------------------------------------------------------------- checks
def checked_settings(detector, settings):
    """The page's post-processing overrides, checked like TextDetector's own settings."""
    from db_tf.detector import check_settings

    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise DemoError(HTTPStatus.BAD_REQUEST, "settings must be an object")
    unknown = set(settings) - set(TUNABLE)
    if unknown:
        raise DemoError(HTTPStatus.BAD_REQUEST, f"unknown settings {sorted(unknown)}; the demo tunes {list(TUNABLE)}")
    if "polygon" in settings and not isinstance(settings["polygon"], bool):
        raise DemoError(HTTPStatus.BAD_REQUEST, "polygon must be true or false")
    try:
        check_settings({**detector.settings, **settings})
    except ValueError as exc:
        raise DemoError(HTTPStatus.BAD_REQUEST, str(exc)) from None
    return dict(settings)


def _unit(text, name):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise DemoError(HTTPStatus.BAD_REQUEST, f"{name} must be a number between 0 and 1, got {text!r}")
    return value


def safe_name(name):
    """A file name for messages and exports: no folders, printable, bounded."""
    base = PurePosixPath(str(name or "").replace("\\", "/")).name
    base = "".join(c for c in base if c.isprintable())[:200].strip()
    return base if base and base not in (".", "..") else "upload"


# ---------------------------------------------------------------------------------------- HTTP
class DemoHandler(BaseHTTPRequestHandler):
    server_version = "db-tf-demo"
    timeout = 60   # a stalled client must not hold a thread forever

    @property
    def app(self):
        return self.server.app

    def do_GET(self):
        self._answer(self._get)

    def do_POST(self):
        self._answer(self._post)

    def _answer(self, route):
        try:
            if not self.server.host_allowed(self.headers.get("Host", "")):
                raise DemoError(HTTPStatus.FORBIDDEN, "this server answers requests for its own address only")
            route(urlsplit(self.path))
        except DemoError as exc:
            self._send_json({"error": exc.message}, exc.status)
        except image_io.ImageReadError as exc:
            self._send_json({"error": f"not a usable image: {exc}"}, HTTPStatus.BAD_REQUEST)
        except Exception as exc:   # a bug or a broken preset: report it, keep serving
            traceback.print_exc(file=sys.stderr)
            self._send_json({"error": f"server error: {type(exc).__name__}: {exc}"}, HTTPStatus.INTERNAL_SERVER_ERROR)

    def _get(self, url):
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if url.path in ("/", "/index.html"):
            return self._send_static("index.html")
        if url.path.startswith("/static/"):
            return self._send_static(url.path[len("/static/"):])
        if url.path == "/api/presets":
            return self._send_json(self.app.preset_list())
        if url.path == "/api/image":
            return self._send(self.app.image_jpeg(query.get("id")), "image/jpeg", cache=True)
        if url.path == "/api/map":
            png = self.app.map_png(query.get("id"), query.get("preset"), query.get("name"), query.get("thresh"))
            return self._send(png, "image/png", cache=True)
        raise DemoError(HTTPStatus.NOT_FOUND, f"no page {url.path}")

    def _post(self, url):
        if url.path == "/api/images":
            data = self._read_body(self.app.max_upload_bytes, "image")
            return self._send_json(self.app.add_image(data, unquote(self.headers.get("X-File-Name", ""))))
        if url.path not in ("/api/detect", "/api/postprocess", "/api/export"):
            raise DemoError(HTTPStatus.NOT_FOUND, f"no API {url.path}")
        request = self._read_json()
        if url.path == "/api/export":
            name, kind, content = self.app.export(request.get("format"), request.get("items"))
            return self._send(content, kind, attachment=name)
        result = self.app.detect(request.get("id"), request.get("preset"), request.get("settings"),
                                 forward=url.path == "/api/detect")
        return self._send_json(result)

    # ------------------------------------------------------------------------------------ bodies
    def _read_body(self, limit, what):
        """The request body, refused before reading when Content-Length is missing, zero or over ``limit``."""
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.close_connection = True
            raise DemoError(HTTPStatus.LENGTH_REQUIRED, "the request needs a Content-Length")
        length = int(length)
        if length > limit:
            self.close_connection = True   # the unread body must not be parsed as the next request
            raise DemoError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                            f"the {what} is {length / 2**20:.1f} MB, more than the limit of {limit / 2**20:.1f} MB")
        if length == 0:
            raise DemoError(HTTPStatus.BAD_REQUEST, f"the {what} is empty")
        data = self.rfile.read(length)
        if len(data) < length:
            raise DemoError(HTTPStatus.BAD_REQUEST, f"the {what} was cut off ({len(data)} of {length} bytes)")
        return data

    def _read_json(self):
        try:
            request = json.loads(self._read_body(MAX_JSON_BYTES, "request"))
        except ValueError:
            raise DemoError(HTTPStatus.BAD_REQUEST, "the request is not valid JSON") from None
        if not isinstance(request, dict):
            raise DemoError(HTTPStatus.BAD_REQUEST, "the request must be a JSON object")
        return request

    def _send_static(self, name):
        path = STATIC_DIR / name
        if "/" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
            raise DemoError(HTTPStatus.NOT_FOUND, f"no file {name}")
        self._send(path.read_bytes(), STATIC_TYPES[path.suffix])

    def _send_json(self, payload, status=HTTPStatus.OK):
        self._send(json.dumps(payload).encode(), "application/json", status)

    def _send(self, body, content_type, status=HTTPStatus.OK, cache=False, attachment=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "private, max-age=3600" if cache else "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if attachment:
            self.send_header("Content-Disposition", f'attachment; filename="{attachment}"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)


class DemoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app, host="127.0.0.1", port=8000, verbose=False):
        self.app = app
        self.verbose = verbose
        super().__init__((host, port), DemoHandler)

    def host_allowed(self, host_header):
        """A server on a loopback address answers only requests addressed to a loopback name: a web page
        elsewhere cannot reach it through a DNS name that resolves to 127.0.0.1 (DNS rebinding)."""
        if not self.server_address[0].startswith("127.") or not host_header:   # browsers always send Host
            return True
        name = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
        return name.lower() in ("localhost", "[::1]") or name.startswith("127.")

    @property
    def url(self):
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else shown}:{port}/"


def serve_in_thread(app, host="127.0.0.1", port=0):
    """Start a DemoServer in a daemon thread (tests, notebooks) -> the server; ``server.shutdown()`` stops it."""
    server = DemoServer(app, host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
