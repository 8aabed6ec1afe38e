"""ICDAR 2015 Challenge 4 detection protocol (IoU): precision, recall, hmean.

The rules are those of the official Robust Reading Competition script (script.py of Challenge 4, Task 1;
MhLiao/DB ships a port as concern/icdar2015_eval/detection/iou.py):

1. a detection with more than half of its own area inside any don't-care GT (transcription ``###``) is
   a "don't-care detection": removed before matching (intersection / detection area > 0.5, strictly);
2. one-to-one greedy matching in GT order, then detection order: a care GT and a care detection, both still
   unmatched, match when their IoU > 0.5 (strictly); don't-care GTs never match;
3. totals over the whole set: recall = matches / care GTs, precision = matches / care detections,
   hmean = 2 P R / (P + R) from those totals (each 0 when its denominator is 0).

An image without any care GT contributes no GT and no match, but its care detections DO enter the
precision denominator (they are false positives): that is what the official script does
(``numGlobalCareDet += numDetCare`` for every image) and what we do. Per image, the official script reports
recall 1 and precision 0 (1 if it has no care detection either) for such an image; ``ImageResult`` does too.

Polygons: shapely geometries. A polygon with fewer than 3 points has area 0 (it can match nothing, and a
zero-area detection is never don't-care). A self-intersecting (invalid) polygon is repaired with
``shapely.make_valid`` (a bow-tie becomes its two triangles) and its polygonal part is used. The official
script computes areas with the Polygon3 library and rejects 4-point boxes that are not clockwise; we accept
any vertex order (area and IoU do not depend on it).
"""
from dataclasses import dataclass, field

import numpy as np
import shapely

IOU_THRESHOLD = 0.5
DONT_CARE_THRESHOLD = 0.5


@dataclass
class ImageResult:
    """Counts for one image; ``pairs`` are (gt index, detection index) matches."""
    gt_care: int
    det_care: int
    matched: int
    pairs: list = field(default_factory=list)
    gt_dont_care: list = field(default_factory=list)
    det_dont_care: list = field(default_factory=list)

    @property
    def recall(self):
        return 1.0 if self.gt_care == 0 else self.matched / self.gt_care

    @property
    def precision(self):
        if self.gt_care == 0:
            return 0.0 if self.det_care > 0 else 1.0
        return 0.0 if self.det_care == 0 else self.matched / self.det_care

    @property
    def hmean(self):
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)

    def as_dict(self):
        return {"precision": self.precision, "recall": self.recall, "hmean": self.hmean,
                "gt_care": self.gt_care, "det_care": self.det_care, "matched": self.matched,
                "pairs": [list(p) for p in self.pairs], "gt_dont_care": list(self.gt_dont_care),
                "det_dont_care": list(self.det_dont_care)}


def to_geometry(points):
    """(K, 2) points -> a valid shapely (Multi)Polygon; fewer than 3 points -> an empty polygon."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) < 3:
        return shapely.Polygon()
    polygon = shapely.Polygon(points)
    if polygon.is_valid:
        return polygon
    repaired = shapely.make_valid(polygon)
    parts = [p for p in shapely.get_parts(repaired) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def pairwise_areas(geoms_a, geoms_b):
    """Intersection areas (len(a), len(b)); only pairs whose envelopes touch are intersected."""
    out = np.zeros((len(geoms_a), len(geoms_b)))
    if len(geoms_a) == 0 or len(geoms_b) == 0:
        return out
    tree = shapely.STRtree(geoms_b)
    ia, ib = tree.query(np.asarray(geoms_a, dtype=object), predicate="intersects")
    if len(ia):
        out[ia, ib] = shapely.area(shapely.intersection(np.asarray(geoms_a, object)[ia],
                                                        np.asarray(geoms_b, object)[ib]))
    return out


def iou_matrix(gt_geoms, det_geoms):
    inter = pairwise_areas(gt_geoms, det_geoms)
    union = shapely.area(np.asarray(gt_geoms, object))[:, None] + shapely.area(np.asarray(det_geoms, object))[None]
    union = union - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def evaluate_image(gt_polygons, gt_ignore, det_polygons, iou_threshold=IOU_THRESHOLD,
                   dont_care_threshold=DONT_CARE_THRESHOLD):
    """Apply the protocol to one image. gt_ignore[i] True = don't care (``###``)."""
    gt_geoms = [to_geometry(p) for p in gt_polygons]
    det_geoms = [to_geometry(p) for p in det_polygons]
    gt_ignore = np.asarray(gt_ignore, dtype=bool).reshape(-1)
    if len(gt_ignore) != len(gt_geoms):
        raise ValueError(f"{len(gt_geoms)} GT polygons but {len(gt_ignore)} ignore flags")
    dont_care_gt = np.flatnonzero(gt_ignore)

    det_removed = np.zeros(len(det_geoms), dtype=bool)
    if len(dont_care_gt) and len(det_geoms):
        inside = pairwise_areas([gt_geoms[i] for i in dont_care_gt], det_geoms)  # (dont-care, det)
        det_area = shapely.area(np.asarray(det_geoms, object))
        fraction = np.divide(inside, det_area[None], out=np.zeros_like(inside), where=det_area[None] > 0)
        det_removed = (fraction > dont_care_threshold).any(axis=0)

    pairs = []
    if len(gt_geoms) and len(det_geoms):
        iou = iou_matrix(gt_geoms, det_geoms)
        available = ~det_removed
        for g in np.flatnonzero(~gt_ignore):
            candidates = np.flatnonzero((iou[g] > iou_threshold) & available)
            if candidates.size:  # the first unmatched detection in detection order
                available[candidates[0]] = False
                pairs.append((int(g), int(candidates[0])))
    return ImageResult(gt_care=int((~gt_ignore).sum()), det_care=int((~det_removed).sum()), matched=len(pairs),
                       pairs=pairs, gt_dont_care=dont_care_gt.tolist(),
                       det_dont_care=np.flatnonzero(det_removed).tolist())


def combine(results):
    """Totals over images -> dict with precision, recall, hmean and the counts."""
    matched = sum(r.matched for r in results)
    gt_care = sum(r.gt_care for r in results)
    det_care = sum(r.det_care for r in results)
    precision, recall, hmean = (float(v) for v in _scores(matched, gt_care, det_care))
    return {"precision": precision, "recall": recall, "hmean": hmean,
            "matched": matched, "gt_care": gt_care, "det_care": det_care, "images": len(results)}


def _scores(matched, gt_care, det_care):
    """(precision, recall, hmean) from totals (numbers or arrays of them); each 0 where its denominator is 0."""
    matched, gt_care, det_care = (np.asarray(v, np.float64) for v in (matched, gt_care, det_care))
    recall = np.divide(matched, gt_care, out=np.zeros_like(matched), where=gt_care > 0)
    precision = np.divide(matched, det_care, out=np.zeros_like(matched), where=det_care > 0)
    total = precision + recall
    hmean = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return precision, recall, hmean


def bootstrap_interval(results, resamples=1000, level=0.95, seed=0):
    """A percentile-bootstrap interval of hmean over images: (low, high).

    Draws `resamples` sets of len(results) images with replacement and recomputes the totals' hmean of each,
    so it shows how much the score of this image set would move with other images like them (a validation
    split of 100 images moves by a few points). Images are the unit: words of one image are not independent.
    """
    if not results:
        raise ValueError("bootstrap_interval needs at least one image result")
    hmeans = _resampled_hmeans(_counts(results), _draws(len(results), resamples, seed))
    return _percentile_interval(hmeans, level)


def paired_bootstrap(results, baseline, resamples=1000, level=0.95, seed=0):
    """hmean(results) - hmean(baseline) for two models scored on the same images (same order), with a
    percentile-bootstrap interval: each resample draws one set of images and scores both models on it, so
    what the images do to both (hard images, easy ones) cancels and only the models' difference varies.
    -> (difference, low, high, share of resamples in which `results` scores higher)."""
    if len(results) != len(baseline) or not results:
        raise ValueError(f"paired_bootstrap needs results for the same images, got {len(results)} and "
                         f"{len(baseline)}")
    draws = _draws(len(results), resamples, seed)
    differences = (_resampled_hmeans(_counts(results), draws) - _resampled_hmeans(_counts(baseline), draws))
    difference = combine(results)["hmean"] - combine(baseline)["hmean"]
    return (difference, *_percentile_interval(differences, level), float(np.mean(differences > 0)))


def _counts(results):
    return np.array([(r.matched, r.gt_care, r.det_care) for r in results], np.float64)


def _draws(images, resamples, seed):
    return np.random.default_rng(seed).integers(0, images, size=(int(resamples), images))


def _resampled_hmeans(counts, draws):
    return _scores(*counts[draws].sum(axis=1).T)[2]


def _percentile_interval(values, level):
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def evaluate(samples, **kwargs):
    """samples: iterable of (gt_polygons, gt_ignore, det_polygons) -> (totals dict, list of ImageResult)."""
    results = [evaluate_image(gt, ignore, det, **kwargs) for gt, ignore, det in samples]
    return combine(results), results


def read_detections(path):
    """Read one detection file written by inference.py (or an ICDAR-style result file).

    Text: one detection per line, comma-separated numbers ``x1,y1,...,xn,yn[,score]`` (an odd count means
    the last number is the score); non-numeric trailing fields (e.g. a transcription) are ignored. JSON:
    {"polygons": [[[x, y], ...], ...], "scores": [...]}.
    Returns (list of float32 (K, 2) arrays, float32 scores or None when the file has none).
    """
    import json
    from pathlib import Path

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
            with np.errstate(over="ignore"):                  # beyond float32 -> inf, refused below
                polygons = [np.asarray(p, np.float32).reshape(-1, 2) for p in data["polygons"]]
        except OverflowError:
            raise ValueError(f"{path}: a coordinate is not finite (an integer beyond float range)") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a detection JSON with a 'polygons' list ({exc})") from None
        if any(len(p) < 3 or not np.all(np.isfinite(p)) for p in polygons):
            raise ValueError(f"{path}: every polygon needs at least 3 finite points (NaN, inf and values "
                             f"beyond float32's +-3.4e38 are not)")
        scores = data.get("scores")
        if scores is None:
            return polygons, None
        try:
            with np.errstate(over="ignore"):
                scores = np.asarray(scores, np.float32).reshape(-1)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"{path}: 'scores' must be a list of numbers ({exc})") from None
        if not np.all(np.isfinite(scores)):
            raise ValueError(f"{path}: every score must be finite")
        if len(scores) != len(polygons):
            raise ValueError(f"{path}: {len(scores)} scores for {len(polygons)} polygons")
        return polygons, scores
    polygons, scores = [], []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        numbers = []
        for field_text in line.split(","):
            try:
                numbers.append(float(field_text))
            except ValueError:
                break  # transcription or other text: the coordinates are over
        if len(numbers) < 6 + len(numbers) % 2:
            raise ValueError(f"{path}:{line_no}: expected at least 3 points 'x1,y1,x2,y2,x3,y3,...', "
                             f"got {line.strip()!r}")
        with np.errstate(over="ignore"):                      # 1e39 is finite in float64, inf in float32
            values = np.asarray(numbers, np.float32)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{path}:{line_no}: non-finite number (NaN, inf, or beyond float32's +-3.4e38) in "
                             f"{line.strip()!r}")
        if len(values) % 2:                                   # an odd count: the last number is the score
            scores.append(values[-1])
            values = values[:-1]
        polygons.append(values.reshape(-1, 2))
    if scores and len(scores) != len(polygons):
        raise ValueError(f"{path}: some lines have a score and some do not")
    return polygons, (np.asarray(scores, np.float32) if scores else None)
