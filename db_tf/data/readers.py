"""Scene-text dataset readers: ground-truth files -> Sample(image path, polygons, ignore flags).

Formats (`spec["format"]`, one entry of cfg.DATA.TRAIN / cfg.DATA.VAL):

  icdar2015    gt_img_N.txt for img_N.jpg. `x1,y1,...,x4,y4,transcription`, UTF-8 with a BOM;
               only the first 8 fields are coordinates (transcriptions may contain commas);
               transcription `###` = ignore.
  msra_td500   X.gt for X.JPG. `index difficult x y w h theta`: rectangle with top-left (x, y)
               and size (w, h), rotated by theta radians about its centre (x' = cx + dx cos - dy sin,
               y' = cy + dx sin + dy cos, checked visually on the data); difficult = 1 -> ignore.
  totaltext    poly_gt_X.txt for X.jpg. `x: [[...]], y: [[...]], ornt: [u'c'], transcriptions:
               [u'...']`; one record may wrap over several lines; transcription `#` (or ornt `#`)
               = ignore.
  ctw1500      NNNN.txt or NNNN.xml for NNNN.jpg. txt: 28 absolute coordinates (14 points), then
               `####transcription` (`###` after the `####` prefix, or a bare `###`, = ignore); a
               line of exactly 32 numbers is the original release's form (xmin, ymin, xmax, ymax,
               then 14 offsets relative to (xmin, ymin)). xml: <box> elements with <segs> (28
               absolute coordinates) and <label>; label `###` = ignore.
  polygon_txt  X.txt (or gt_X.txt) for X.<ext>. `x1,y1,...,xn,yn[,transcription]`, n >= 3; the
               coordinates are the longest even-length run of leading plain decimal numbers, so a
               numeric transcription like `2020` is read correctly, but one holding two numeric
               comma-separated fields (`12,5`) cannot be told from a point: avoid writing those.
               `###` = ignore. (db_tf.synth writes this format.)
  labelme      X.json for X.<ext> (labelme's own naming; images and labels may be one folder):
               {"shapes": [{"label", "points": [[x, y], ...], "shape_type"}], "imagePath", ...}.
               shape_type polygon (or missing: labelme < 3) as is; rectangle: its 2 points are
               opposite corners; other types (line, point, circle, ...) are no text area: skipped
               with a warning (strict: error). Label `###` (spec "ignore_labels": [...] to choose
               others) = ignore. An imagePath naming another image is warned about (strict: error);
               imageData / imageHeight / imageWidth are not used. Errors name `file:shapes[j]`.
  mmocr        one MMOCR textdet JSON in `labels`: {"data_list": [{"img_path", "instances":
               [{"polygon": [x1, y1, ...] (or "bbox": [x1, y1, x2, y2]), "ignore": bool,
               "text"?}]}]}; relative img_path is joined to `images` (default: the JSON's folder).
  paddleocr    one PaddleOCR detection label file in `labels` (PPOCRLabel's Label.txt, PaddleOCR's
               train_list): `image path<TAB>[{"transcription": "...", "points": [[x, y], ...]}, ...]`
               per image; the path is relative to `images` (PaddleOCR's data_dir, required).
               Transcription `###` or `*` (PaddleOCR's don't-care marks) or "difficult": true =
               ignore. A malformed line is skipped with a warning naming file:line (strict: error).

Every reader yields float32 (K, 2) polygons (K >= 3), a bool ignore array and the transcriptions.

Bad input (decided rules; strict=True raises an error naming file and line instead):
  * unreadable / missing / non-UTF-8 GT file, malformed line or record -> AnnotationError always
    from read_annotation (we cannot know where that text is); read_dataset then skips the whole
    sample with a logged warning (strict: re-raises).
  * polygon with < 3 distinct points, or area < 1 px^2 -> that polygon is dropped with a logged
    warning (it covers no pixels worth labelling); so is one with a coordinate that is NaN / inf,
    or becomes inf as float32 (|x| > 3.4e38: `1e39`), checked here for every format.
  * self-intersecting polygon -> replaced by its convex hull and marked ignore (logged): the
    region is masked out of the loss instead of getting a wrong shape.
  * points outside the image -> kept as they are; the label maps clip to the image (MSRA-TD500
    has boxes past the border). The reader never opens the image.
  * images without a GT file and GT files without an image -> logged and skipped (strict: raise).
  * consecutive duplicate points (and a repeated closing point) are removed silently.
  * an MMOCR JSON or PaddleOCR label file that cannot be read, or an MMOCR JSON that cannot be
    parsed, raises in both modes (it is the whole dataset); a bad entry in it (missing image,
    malformed instance or line) skips that image (strict: raises).
  Missing / corrupt images are found when decoding: image_io.read_image raises ImageReadError.

Mixing datasets: every Sample carries its dataset's `ratio` (spec["ratio"], default 1) and a
`dataset` name. `sampling_weights(samples)` gives per-sample probabilities so that dataset d is
drawn with probability ratio_d / sum(ratios), whatever its size. Optional spec keys: "name", and
"select": "start:stop" slicing the naturally sorted image list (e.g. "0:900" / "900:1000" for the
ICDAR 2015 train / validation split img_1..img_900 / img_901..img_1000); for an MMOCR JSON or a
PaddleOCR label file it slices the entries in file order, after bad entries were skipped; labelme:
"ignore_labels" (default ["###"]).
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import xml.parsers.expat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from db_tf.data.image_io import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

MIN_POLYGON_AREA = 1.0          # px^2; smaller polygons are dropped as degenerate
FORMATS = ("icdar2015", "msra_td500", "totaltext", "ctw1500", "polygon_txt", "labelme", "mmocr", "paddleocr")
# GT file name(s) for an image stem, in order of preference.
GT_NAMES = {
    "icdar2015": ("gt_{stem}.txt",),
    "msra_td500": ("{stem}.gt",),
    "totaltext": ("poly_gt_{stem}.txt",),
    "ctw1500": ("{stem}.txt", "{stem}.xml"),
    "polygon_txt": ("{stem}.txt", "gt_{stem}.txt"),
    "labelme": ("{stem}.json",),
}
LABELME_IGNORE = ("###",)                 # labelme labels meaning "ignore" unless a spec sets "ignore_labels"
PADDLEOCR_IGNORE = ("###", "*")           # PaddleOCR's own don't-care transcriptions


@dataclass
class Sample:
    """One training image and its texts. polygons: float32 (K, 2) (x, y); ignore: bool (n,)."""
    image_path: str
    polygons: list
    ignore: np.ndarray
    texts: list
    dataset: str = ""
    ratio: float = 1.0


class AnnotationError(ValueError):
    """A ground-truth file, or a line / record of one, that cannot be used."""

    def __init__(self, path, line, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


# ----------------------------------------------------------------------------- polygon checks
_NON_FINITE = "non-finite coordinate (NaN, inf, or beyond float32's range of +-3.4e38)"


def _check_polygon(points, path, line, strict):
    """Validate one parsed polygon: (float32 polygon or None to drop, force_ignore)."""
    def reject(reason):
        if strict:
            raise AnnotationError(path, line, reason)
        log.warning("%s:%s: %s; polygon dropped", path, line, reason)
        return None, False

    try:
        points = np.asarray(points, np.float64).reshape(-1, 2)
    except OverflowError:                                           # a JSON integer beyond float64
        return reject(_NON_FINITE)
    with np.errstate(over="ignore"):                                # 1e39 is finite in float64 only:
        if not np.all(np.isfinite(points.astype(np.float32))):       # test what the polygon is stored as
            return reject(_NON_FINITE)
    following = np.concatenate([points[1:], points[:1]])
    keep = np.any(points != following, axis=1)                      # drop repeats, incl. a closing point
    points = points[keep] if keep.any() else points[:1]
    distinct = len(set(map(tuple, points.tolist())))
    if distinct < 3:
        return reject(f"polygon has {distinct} distinct point(s), needs at least 3")
    shape = shapely.polygons(points)
    if shapely.is_valid(shape):
        if shape.area < MIN_POLYGON_AREA:
            return reject(f"polygon area {shape.area:.3g} px^2 is below {MIN_POLYGON_AREA} (zero area)")
        return points.astype(np.float32), False
    hull = shapely.convex_hull(shape)
    if not isinstance(hull, shapely.Polygon) or hull.area < MIN_POLYGON_AREA:
        return reject("polygon has zero area (all points on a line)")
    if strict:
        raise AnnotationError(path, line, "self-intersecting polygon")
    log.warning("%s:%s: self-intersecting polygon; replaced by its convex hull and ignored", path, line)
    return np.asarray(hull.exterior.coords, np.float32)[:-1], True


class _Collector:
    """Accumulates checked polygons of one GT file."""

    def __init__(self, path, strict):
        self.path, self.strict = path, strict
        self.polygons, self.ignore, self.texts = [], [], []

    def add(self, points, ignored, text, line):
        polygon, force_ignore = _check_polygon(points, self.path, line, self.strict)
        if polygon is not None:
            self.polygons.append(polygon)
            self.ignore.append(bool(ignored or force_ignore))
            self.texts.append(text)

    def result(self):
        return self.polygons, np.asarray(self.ignore, bool), self.texts


# ----------------------------------------------------------------------------- file helpers
def _read_text(path) -> str:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise AnnotationError(path, None, "ground-truth file not found") from None
    except OSError as err:
        raise AnnotationError(path, None, f"cannot read ground-truth file ({err.strerror or err})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise AnnotationError(path, line, f"not valid UTF-8 (byte {err.start})") from None


def _lines(path):
    """(line number, stripped line) for every non-blank line."""
    for number, line in enumerate(_read_text(path).split("\n"), start=1):   # not splitlines(): it
        line = line.strip()                                                   # also splits at \x1c etc.
        if line:
            yield number, line


def _floats(fields, path, line, what="coordinate"):
    try:
        values = [float(v) for v in fields]
    except ValueError:
        raise AnnotationError(path, line, f"non-numeric {what} in {fields!r}") from None
    return values


_PLAIN_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)\s*")


def _leading_numbers(fields) -> int:
    """How many leading fields are plain decimal numbers (not 'nan', '1e5' or '1_000')."""
    count = 0
    for value in fields:
        if not _PLAIN_NUMBER.fullmatch(value):
            break
        count += 1
    return count


# ----------------------------------------------------------------------------- per-format parsers
def _parse_icdar2015(path, strict):
    out = _Collector(path, strict)
    for number, line in _lines(path):
        fields = line.split(",")
        if len(fields) < 8:
            raise AnnotationError(path, number, f"expected 8 coordinates and a transcription, got {line!r}")
        coords = _floats(fields[:8], path, number)
        text = ",".join(fields[8:])
        out.add(np.reshape(coords, (4, 2)), text == "###", text, number)
    return out.result()


def msra_rectangle(x, y, w, h, theta) -> np.ndarray:
    """Corners of the MSRA-TD500 box: (x, y, w, h) rotated by theta (radians) about its centre."""
    cx, cy = x + w / 2.0, y + h / 2.0
    corners = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64) - (cx, cy)
    c, s = math.cos(theta), math.sin(theta)
    return corners @ np.array([[c, s], [-s, c]]) + (cx, cy)


def _parse_msra_td500(path, strict):
    out = _Collector(path, strict)
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 7:
            raise AnnotationError(path, number, f"expected 'index difficult x y w h theta', got {line!r}")
        _, difficult, x, y, w, h, theta = _floats(fields, path, number, "field")
        if difficult not in (0.0, 1.0):
            raise AnnotationError(path, number, f"difficult flag must be 0 or 1, got {fields[1]!r}")
        out.add(msra_rectangle(x, y, w, h, theta), difficult == 1.0, "", number)
    return out.result()


_TOTALTEXT_RECORD = re.compile(
    r"x:\s*\[\[(?P<x>[^\]]*)\]\]\s*,\s*y:\s*\[\[(?P<y>[^\]]*)\]\]\s*,\s*"
    r"ornt:\s*\[(?P<ornt>[^\]]*)\]\s*,\s*transcriptions:\s*\[(?P<text>.*)\]\s*$", re.DOTALL)
_QUOTED = re.compile(r"""^u?(['"])(.*)\1$""", re.DOTALL)
_NUMBER = re.compile(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


def _totaltext_records(path):
    """(first line number, record text): a record starts at 'x:' and may wrap over lines."""
    start, parts = None, []
    for number, line in _lines(path):
        if line.startswith("x:") and parts:
            yield start, " ".join(parts)
            parts = []
        if not parts:
            if not line.startswith("x:"):
                raise AnnotationError(path, number, f"expected a record starting with 'x:', got {line!r}")
            start = number
        parts.append(line)
    if parts:
        yield start, " ".join(parts)


def _unquote(value):
    value = value.strip()
    match = _QUOTED.match(value)
    return match.group(2) if match else value


def _parse_totaltext(path, strict):
    out = _Collector(path, strict)
    for number, record in _totaltext_records(path):
        match = _TOTALTEXT_RECORD.match(record)
        if not match:
            raise AnnotationError(path, number, f"malformed Total-Text record {record[:80]!r}")
        xs = [float(v) for v in _NUMBER.findall(match["x"])]
        ys = [float(v) for v in _NUMBER.findall(match["y"])]
        if len(xs) != len(ys):
            raise AnnotationError(path, number, f"{len(xs)} x values but {len(ys)} y values")
        text = _unquote(match["text"]) if match["text"].strip() else "#"
        ignored = text == "#" or _unquote(match["ornt"]) == "#"
        out.add(np.stack([xs, ys], axis=1) if xs else np.zeros((0, 2)), ignored, text, number)
    return out.result()


def _ctw1500_text(rest):
    text = ",".join(rest)
    if text.startswith("####"):
        text = text[4:]
    return text, text == "###"


def _parse_ctw1500_txt(path, strict):
    out = _Collector(path, strict)
    for number, line in _lines(path):
        fields = line.split(",")
        count = _leading_numbers(fields)
        values = _floats(fields[:count], path, number)
        if count == 32 and len(fields) == 32:           # original release: box + relative offsets
            points = np.reshape(values[4:], (14, 2)) + values[:2]
            text, ignored = "", False
        elif count == 28:
            points = np.reshape(values, (14, 2))
            text, ignored = _ctw1500_text(fields[28:])
        else:
            raise AnnotationError(path, number, f"expected 28 coordinates (or the 32-value form), got {count}")
        out.add(points, ignored, text, number)
    return out.result()


def _parse_ctw1500_xml(path, strict):
    """<box> elements with <segs> (28 absolute values) and <label>; expat keeps line numbers."""
    boxes, current, stack = [], None, []
    parser = xml.parsers.expat.ParserCreate()

    def start(name, _attrs):
        nonlocal current
        stack.append(name)
        if name == "box":
            current = {"line": parser.CurrentLineNumber, "segs": None, "label": ""}
        elif current is not None and name in ("segs", "label"):
            current[name] = ""

    def end(name):
        nonlocal current
        stack.pop()
        if name == "box" and current is not None:
            boxes.append(current)
            current = None

    def text(data):
        if current is not None and stack and stack[-1] in ("segs", "label"):
            current[stack[-1]] += data

    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, text
    try:
        parser.Parse(_read_text(path).encode("utf-8"), True)
    except xml.parsers.expat.ExpatError as err:
        reason = xml.parsers.expat.errors.messages[err.code]
        raise AnnotationError(path, err.lineno, f"malformed XML ({reason})") from None
    out = _Collector(path, strict)
    for box in boxes:
        if box["segs"] is None:
            raise AnnotationError(path, box["line"], "<box> without <segs>")
        fields = [v for v in re.split(r"[,\s]+", box["segs"].strip()) if v]
        if len(fields) % 2 or len(fields) < 6:
            raise AnnotationError(path, box["line"], f"<segs> needs an even number (>= 6) of values, got {len(fields)}")
        label = box["label"].strip()
        out.add(np.reshape(_floats(fields, path, box["line"]), (-1, 2)), label == "###", label, box["line"])
    return out.result()


def _parse_ctw1500(path, strict):
    if str(path).lower().endswith(".xml"):
        return _parse_ctw1500_xml(path, strict)
    return _parse_ctw1500_txt(path, strict)


def _parse_polygon_txt(path, strict):
    out = _Collector(path, strict)
    for number, line in _lines(path):
        fields = [f.strip() for f in line.split(",")]
        count = _leading_numbers(fields)
        count -= count % 2                               # an odd trailing number is the transcription
        if count < 6:
            raise AnnotationError(path, number, f"expected at least 3 (x, y) pairs, got {line!r}")
        text = ",".join(fields[count:])
        out.add(np.reshape(_floats(fields[:count], path, number), (-1, 2)), text == "###", text, number)
    return out.result()


def _load_json(path):
    """Parsed JSON of a file; malformed -> AnnotationError with its line."""
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise AnnotationError(path, err.lineno, f"malformed JSON ({err.msg})") from None


def _xy_points(value, path, where):
    """A JSON list of [x, y] pairs -> float64 (K, 2); an integer beyond float range becomes inf."""
    if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2 for p in value):
        raise AnnotationError(path, where, f"'points' must be a list of [x, y] pairs, got {str(value)[:60]}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for p in value for v in p):
        raise AnnotationError(path, where, f"non-numeric point in {str(value)[:60]}")   # null would be NaN
    try:
        return np.asarray(value, np.float64).reshape(-1, 2)
    except OverflowError:
        return np.full((len(value), 2), np.inf)            # _check_polygon drops it as non-finite


def _labelme_points(shape, path, where, strict):
    """(K, 2) points of a labelme shape, or None for a shape type that is not an area (logged)."""
    kind = shape.get("shape_type") or "polygon"             # labelme < 3 wrote no shape_type: polygons
    points = _xy_points(shape.get("points"), path, where)
    if kind == "polygon":
        return points
    if kind == "rectangle":
        if len(points) != 2:
            raise AnnotationError(path, where, f"a rectangle needs 2 corner points, got {len(points)}")
        (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    reason = f"shape_type {kind!r} is not a text area (polygon or rectangle)"
    if strict:
        raise AnnotationError(path, where, reason)
    log.warning("%s:%s: %s; shape skipped", path, where, reason)
    return None


def _parse_labelme(path, strict, ignore_labels=LABELME_IGNORE):
    content = _load_json(path)
    if not isinstance(content, dict) or not isinstance(content.get("shapes"), list):
        raise AnnotationError(path, None, "not a labelme file: no 'shapes' list at the top level")
    image_path = content.get("imagePath")
    if isinstance(image_path, str) and Path(image_path.replace("\\", "/")).stem != Path(path).stem:
        reason = f"imagePath {image_path!r} names another image than this file's name"   # a copied file?
        if strict:
            raise AnnotationError(path, None, reason)
        log.warning("%s: %s; read as the labels of %s.*", path, reason, Path(path).stem)
    out = _Collector(path, strict)
    for j, shape in enumerate(content["shapes"]):
        if not isinstance(shape, dict):
            raise AnnotationError(path, f"shapes[{j}]", "not an object")
        label = str(shape.get("label", ""))
        where = f"shapes[{j}] ({label!r})"
        points = _labelme_points(shape, path, where, strict)
        if points is not None:
            out.add(points, label in ignore_labels, label, where)
    return out.result()


PARSERS = {
    "icdar2015": _parse_icdar2015,
    "msra_td500": _parse_msra_td500,
    "totaltext": _parse_totaltext,
    "ctw1500": _parse_ctw1500,
    "polygon_txt": _parse_polygon_txt,
    "labelme": _parse_labelme,
}
IGNORE_LABEL_FORMATS = ("labelme",)       # formats whose don't-care label can be chosen ("ignore_labels")


def read_annotation(path, fmt, strict=False, ignore_labels=None):
    """Parse ONE per-image GT file -> (polygons float32 (K, 2), ignore bool (n,), texts).

    Raises AnnotationError (file:line: reason) for an unreadable file or a malformed line in
    either mode; geometric problems raise only when strict (see the module docstring).
    ignore_labels: labelme labels that mark a don't-care region (default LABELME_IGNORE).
    """
    if fmt not in PARSERS:
        raise ValueError(f"unknown per-image GT format {fmt!r}; expected one of {sorted(PARSERS)}")
    if ignore_labels is None:
        return PARSERS[fmt](os.fspath(path), strict)
    if fmt not in IGNORE_LABEL_FORMATS:
        raise ValueError(f"ignore_labels applies to {', '.join(IGNORE_LABEL_FORMATS)}, not to {fmt}")
    if isinstance(ignore_labels, str):
        ignore_labels = [ignore_labels]
    return PARSERS[fmt](os.fspath(path), strict, tuple(str(label) for label in ignore_labels))


# ----------------------------------------------------------------------------- MMOCR JSON
def read_mmocr_json(json_path, images_dir=None, strict=False, dataset="", ratio=1.0) -> list[Sample]:
    """Samples of an MMOCR textdet JSON; a bad entry is skipped with a warning (strict: raised)."""
    json_path = os.fspath(json_path)
    content = _load_json(json_path)
    if not isinstance(content, dict) or not isinstance(content.get("data_list"), list):
        raise AnnotationError(json_path, None, "no 'data_list' list at the top level")
    images_dir = images_dir or os.path.dirname(json_path)
    samples = []
    for index, entry in enumerate(content["data_list"]):
        try:
            samples.append(_mmocr_sample(entry, index, json_path, images_dir, strict, dataset, ratio))
        except AnnotationError as err:
            if strict:
                raise
            log.warning("%s; sample skipped", err)
    return samples


def _mmocr_sample(entry, index, json_path, images_dir, strict, dataset, ratio):
    where = f"data_list[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("img_path"), str):
        raise AnnotationError(json_path, None, f"{where}: missing 'img_path'")
    image_path = os.path.join(images_dir, entry["img_path"])
    if not os.path.isfile(image_path):
        raise AnnotationError(json_path, None, f"{where}: image {image_path} not found")
    out = _Collector(json_path, strict)
    for j, instance in enumerate(entry.get("instances", [])):
        place = f"{where} ({entry['img_path']}) instances[{j}]"
        if not isinstance(instance, dict):
            raise AnnotationError(json_path, None, f"{place}: not an object")
        if instance.get("polygon") is not None:
            values = instance["polygon"]
        elif instance.get("bbox") is not None and len(instance["bbox"]) == 4:
            x1, y1, x2, y2 = instance["bbox"]
            values = [x1, y1, x2, y1, x2, y2, x1, y2]
        else:
            raise AnnotationError(json_path, None, f"{place}: no 'polygon' or 'bbox'")
        if not isinstance(values, list) or len(values) % 2:
            raise AnnotationError(json_path, None, f"{place}: 'polygon' must be a flat list of x, y pairs")
        try:
            points = np.asarray(values, np.float64).reshape(-1, 2)
        except OverflowError:
            points = values                             # an integer beyond float64: _check_polygon drops it
        except (TypeError, ValueError):
            raise AnnotationError(json_path, None, f"{place}: non-numeric polygon") from None
        out.add(points, bool(instance.get("ignore", False)), str(instance.get("text", "")), place)
    polygons, ignore, texts = out.result()
    return Sample(image_path, polygons, ignore, texts, dataset, ratio)


# ----------------------------------------------------------------------------- PaddleOCR label file
@dataclass
class LabelLine:
    """One line of a PaddleOCR label file: the image path as written, and its texts."""
    line: int
    image: str
    polygons: list
    ignore: np.ndarray
    texts: list


def _paddleocr_line(text, number, path, strict) -> LabelLine:
    image, tab, labels = text.partition("\t")
    if not tab or not image.strip():
        raise AnnotationError(path, number, f"expected 'image path<TAB>JSON list', got {text[:80]!r}")
    try:
        items = json.loads(labels)
    except json.JSONDecodeError as err:
        raise AnnotationError(path, number, f"malformed JSON after the tab ({err.msg}, column "
                                            f"{len(image) + 1 + err.colno})") from None
    if not isinstance(items, list):
        raise AnnotationError(path, number, "the labels after the tab must be a JSON list")
    out = _Collector(path, strict)
    for j, item in enumerate(items):
        if not isinstance(item, dict) or "points" not in item:
            raise AnnotationError(path, number, f"item {j} is not an object with 'points'")
        transcription = str(item.get("transcription", ""))
        ignored = transcription in PADDLEOCR_IGNORE or item.get("difficult") == 1    # true or 1
        out.add(_xy_points(item["points"], path, number), ignored, transcription, number)
    return LabelLine(number, image.strip(), *out.result())


def read_paddleocr_labels(label_path, strict=False, skip_malformed=True) -> list[LabelLine]:
    """The lines of a PaddleOCR detection label file (`image path<TAB>[{"transcription", "points"}]`).

    A malformed line is skipped with a logged warning naming file:line, or raised when strict or
    skip_malformed=False (evaluation: a missing GT image would change the scores). The images are
    not looked at.
    """
    label_path = os.fspath(label_path)
    entries = []
    for number, line in _lines(label_path):
        try:
            entries.append(_paddleocr_line(line, number, label_path, strict))
        except AnnotationError as err:
            if strict or not skip_malformed:
                raise
            log.warning("%s; line skipped", err)
    return entries


def read_paddleocr(label_path, images_dir, strict=False, dataset="", ratio=1.0) -> list[Sample]:
    """Samples of a PaddleOCR label file whose image paths are relative to images_dir (data_dir)."""
    if not images_dir or not os.path.isdir(images_dir):
        raise ValueError(f"paddleocr dataset: 'images' must be the folder the label file's image paths are "
                         f"relative to, {images_dir!r} is not a folder")
    samples = []
    for entry in read_paddleocr_labels(label_path, strict):
        image_path = os.path.join(images_dir, entry.image)
        if not os.path.isfile(image_path):
            err = AnnotationError(label_path, entry.line, f"image {image_path} not found")
            if strict:
                raise err
            log.warning("%s; sample skipped", err)
            continue
        samples.append(Sample(image_path, entry.polygons, entry.ignore, entry.texts, dataset, ratio))
    return samples


# ----------------------------------------------------------------------------- datasets
def natural_key(name: str):
    """Sort key putting img_2 before img_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _select(items, select):
    if not select:
        return items
    match = re.fullmatch(r"\s*(-?\d*)\s*:\s*(-?\d*)\s*", str(select))
    if not match:
        raise ValueError(f"'select' must look like 'start:stop', got {select!r}")
    start, stop = (int(v) if v else None for v in match.groups())
    return items[start:stop]


def _report(folder, problem, names, strict):
    if not names:
        return
    message = f"{problem} ({len(names)}): {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}"
    if strict:
        raise AnnotationError(folder, None, message)
    log.warning("%s: %s; skipped", folder, message)


def _pair_images(fmt, images_dir, labels_dir, strict, select):
    """[(image path, GT path)] by the format's naming convention; mismatches reported."""
    images = sorted((p for p in Path(images_dir).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                    key=lambda p: natural_key(p.name))
    images = _select(images, select)
    label_files = {p.name: p for p in Path(labels_dir).iterdir() if p.is_file()}
    pairs, no_gt, used = [], [], set()
    for image in images:
        names = [pattern.format(stem=image.stem) for pattern in GT_NAMES[fmt]]
        found = next((label_files[n] for n in names if n in label_files), None)
        if found is None:
            no_gt.append(f"{image.name} (expected {' or '.join(names)})")
        else:
            pairs.append((str(image), str(found)))
            used.add(found.name)
    _report(images_dir, f"images without a ground-truth file in {labels_dir}", no_gt, strict)
    if not select:
        label_suffixes = {Path(pattern).suffix for pattern in GT_NAMES[fmt]}
        orphans = sorted((n for n, p in label_files.items() if p.suffix in label_suffixes and n not in used),
                         key=natural_key)
        _report(labels_dir, f"ground-truth files without an image in {images_dir}", orphans, strict)
    return pairs


# Formats whose `labels` is one file for the whole dataset: reader(labels, images, strict, name, ratio).
LABEL_FILE_READERS = {"mmocr": read_mmocr_json, "paddleocr": read_paddleocr}


def read_dataset(spec: dict, strict=False) -> list[Sample]:
    """All samples of one dataset spec {"format", "images", "labels", "ratio", ["name", "select", "ignore_labels"]}."""
    fmt = spec.get("format")
    if fmt not in FORMATS:
        raise ValueError(f"dataset format {fmt!r} unknown; expected one of {list(FORMATS)}")
    images, labels = spec.get("images") or "", spec.get("labels") or ""
    ratio = float(spec.get("ratio", 1.0))
    if not ratio > 0:
        raise ValueError(f"dataset ratio must be > 0, got {ratio} in {spec}")
    name = spec.get("name") or f"{fmt}:{images or labels}"
    ignore_labels = spec.get("ignore_labels")
    if ignore_labels is not None and fmt not in IGNORE_LABEL_FORMATS:
        raise ValueError(f"'ignore_labels' applies to {', '.join(IGNORE_LABEL_FORMATS)} datasets, not to {fmt}")
    if fmt in LABEL_FILE_READERS:
        if not os.path.isfile(labels):
            raise ValueError(f"{fmt} dataset: 'labels' must be the label file, {labels!r} is not a file")
        samples = LABEL_FILE_READERS[fmt](labels, images or None, strict, name, ratio)
        return _select(samples, spec.get("select"))
    for key, folder in (("images", images), ("labels", labels)):
        if not os.path.isdir(folder):
            raise ValueError(f"{fmt} dataset: {key!r} folder {folder!r} does not exist")
    samples = []
    for image_path, gt_path in _pair_images(fmt, images, labels, strict, spec.get("select")):
        try:
            polygons, ignore, texts = read_annotation(gt_path, fmt, strict, ignore_labels)
        except AnnotationError as err:
            if strict:
                raise
            log.warning("%s; sample %s skipped", err, image_path)
            continue
        samples.append(Sample(image_path, polygons, ignore, texts, name, ratio))
    return samples


def read_datasets(specs, strict=False) -> list[Sample]:
    """Concatenation of read_dataset over cfg.DATA.TRAIN-like specs (use sampling_weights to mix)."""
    samples = []
    for spec in specs:
        samples.extend(read_dataset(spec, strict))
    return samples


def sampling_weights(samples) -> np.ndarray:
    """Per-sample probabilities: dataset d gets ratio_d / sum(ratios) of the draws, spread evenly."""
    if not samples:
        return np.zeros(0)
    counts, ratios = {}, {}
    for s in samples:
        counts[s.dataset] = counts.get(s.dataset, 0) + 1
        ratios[s.dataset] = s.ratio
    total = sum(ratios.values())
    return np.array([ratios[s.dataset] / total / counts[s.dataset] for s in samples])
