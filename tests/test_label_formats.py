"""PaddleOCR label files and labelme JSON (db_tf/data/readers.py): fixtures, broken input, pipeline, evaluate.py.

The expected polygons are the ones tests/fixtures/make_fixtures.py writes, restated here by hand.
"""
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from db_tf.cli import evaluate
from db_tf.data.image_io import read_image
from db_tf.data.readers import AnnotationError, read_annotation, read_dataset, read_paddleocr_labels

FIXTURES = Path(__file__).parent / "fixtures"
PADDLE = {"format": "paddleocr", "images": str(FIXTURES / "paddleocr"), "labels": str(FIXTURES / "paddleocr/Label.txt")}
LABELME = {"format": "labelme", "images": str(FIXTURES / "labelme/imgs"), "labels": str(FIXTURES / "labelme/imgs")}
HEXAGON = [[40, 30], [50, 26], [60, 30], [60, 40], [50, 44], [40, 40]]
PENTAGON = [[30, 30], [50, 28], [55, 40], [40, 45], [32, 42]]


def rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def assert_polygons(polygons, expected):
    assert len(polygons) == len(expected)
    for got, want in zip(polygons, expected):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, np.asarray(want, np.float32))


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- fixtures
def test_paddleocr_fixture_polygons_ignore_and_images():
    samples = read_dataset(PADDLE, strict=True)
    assert [Path(s.image_path).relative_to(FIXTURES / "paddleocr").as_posix() for s in samples] == \
        ["imgs/1.jpg", "imgs/2.jpg", "imgs/3.jpg"]
    first, second, empty = samples
    assert_polygons(first.polygons, [rect(4, 4, 40, 14), rect(10, 20, 30, 30), HEXAGON])
    assert first.texts == ["Hello", "###", "中文"]
    assert first.ignore.tolist() == [False, True, True]             # ###, and "difficult": true
    assert_polygons(second.polygons, [rect(2, 2, 20, 12), rect(30, 30, 50, 40)])
    assert second.ignore.tolist() == [True, False]                  # "*" is PaddleOCR's other don't-care mark
    assert empty.polygons == [] and empty.ignore.shape == (0,)      # an image without text
    assert all(read_image(s.image_path).shape == (48, 64, 3) for s in samples)
    assert [Path(s.image_path).name for s in read_dataset({**PADDLE, "select": "1:"})] == ["2.jpg", "3.jpg"]


def test_labelme_fixture_polygons_rectangles_and_ignore():
    polygons, ignore, texts = read_annotation(FIXTURES / "labelme/imgs/a.json", "labelme", strict=True)
    assert_polygons(polygons, [rect(4, 4, 40, 14), rect(10, 20, 30, 30), rect(44, 30, 60, 44)])  # corners reversed
    assert texts == ["Hello", "###", "box"] and ignore.tolist() == [False, True, False]
    polygons, ignore, texts = read_annotation(FIXTURES / "labelme/imgs/b.json", "labelme", strict=True)
    assert_polygons(polygons, [PENTAGON])                           # no shape_type (labelme < 3): a polygon
    samples = read_dataset(LABELME, strict=True)                    # images and JSON in one folder
    assert [Path(s.image_path).name for s in samples] == ["a.jpg", "b.png"]
    assert all(read_image(s.image_path).shape == (48, 64, 3) for s in samples)


def test_labelme_ignore_labels_replace_the_default():
    def flags(labels):
        return read_dataset({**LABELME, "ignore_labels": labels}, strict=True)[0].ignore.tolist()

    assert flags(["###", "box"]) == [False, True, True]
    assert flags(["box"]) == [False, False, True]
    assert flags("box") == [False, False, True]
    with pytest.raises(ValueError, match="'ignore_labels' applies to labelme"):
        read_dataset({"format": "icdar2015", "images": str(FIXTURES / "icdar2015/imgs"),
                      "labels": str(FIXTURES / "icdar2015/gts"), "ignore_labels": ["x"]})


# ----------------------------------------------------------------------------- broken PaddleOCR lines
GOOD = 'imgs/1.jpg\t[{"transcription": "a", "points": [[1, 1], [20, 1], [20, 9], [1, 9]]}]'
BROKEN_LINES = [
    ("imgs/2.jpg [] no tab", "expected 'image path<TAB>JSON list'"),
    ('\t[{"transcription": "a", "points": [[1, 1], [9, 1], [9, 9]]}]', "expected 'image path<TAB>JSON list'"),
    ('imgs/2.jpg\t[{"transcription": "a", "points": [[1, 1], [9, 1]', "malformed JSON after the tab"),
    ('imgs/2.jpg\t{"transcription": "a"}', "must be a JSON list"),
    ('imgs/2.jpg\t[{"transcription": "a"}]', "item 0 is not an object with 'points'"),
    ('imgs/2.jpg\t[{"transcription": "a", "points": [1, 1, 9, 1, 9, 9]}]', "list of \\[x, y\\] pairs"),
    ('imgs/2.jpg\t[{"transcription": "a", "points": [[1, 1], [9, "x"], [9, 9]]}]', "non-numeric point"),
    ('imgs/9.jpg\t[{"transcription": "a", "points": [[1, 1], [9, 1], [9, 9]]}]', "image .*9.jpg not found"),
]


@pytest.mark.parametrize("line, reason", BROKEN_LINES, ids=[f"broken{i}" for i in range(len(BROKEN_LINES))])
def test_broken_paddleocr_line_is_skipped_or_raised_with_file_and_line(line, reason, tmp_path, caplog):
    shutil.copytree(FIXTURES / "paddleocr/imgs", tmp_path / "imgs")
    label = write(tmp_path / "Label.txt", f"{GOOD}\n{line}\n{GOOD.replace('1.jpg', '3.jpg')}\n")
    spec = {"format": "paddleocr", "images": str(tmp_path), "labels": str(label)}
    with caplog.at_level(logging.WARNING):
        samples = read_dataset(spec)
    assert [Path(s.image_path).name for s in samples] == ["1.jpg", "3.jpg"]
    assert "Label.txt:2: " in caplog.text and "skipped" in caplog.text
    with pytest.raises(AnnotationError, match=rf"Label.txt:2: .*{reason}"):
        read_dataset(spec, strict=True)


def test_paddleocr_polygon_problems_name_the_line(tmp_path, caplog):
    label = write(tmp_path / "Label.txt", GOOD + "\n" + 'imgs/2.jpg\t[{"transcription": "a", "points": '
                  '[[0, 0], [1e39, 0], [9, 9]]}, {"transcription": "b", "points": [[0, 0], [5, 5], [9, 9]]}, '
                  '{"transcription": "c", "points": [[0, 0], [9, 0], [9, 9]]}]\n')
    with caplog.at_level(logging.WARNING):
        entries = read_paddleocr_labels(label)
    assert [e.texts for e in entries] == [["a"], ["c"]]             # the overflowing and the flat one dropped
    assert "Label.txt:2: non-finite coordinate" in caplog.text and "Label.txt:2: polygon has zero area" in caplog.text
    with pytest.raises(AnnotationError, match="Label.txt:2: non-finite coordinate"):
        read_paddleocr_labels(label, strict=True)


def test_paddleocr_file_level_problems(tmp_path):
    with pytest.raises(AnnotationError, match="not found"):
        read_paddleocr_labels(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="'labels' must be the label file"):
        read_dataset({"format": "paddleocr", "images": str(tmp_path), "labels": str(tmp_path)})
    label = write(tmp_path / "Label.txt", GOOD + "\n")
    with pytest.raises(ValueError, match="'images' must be the folder"):
        read_dataset({"format": "paddleocr", "labels": str(label)})
    bad = write(tmp_path / "Bad.txt", GOOD + "\n" + "oops\n")
    with pytest.raises(AnnotationError, match="Bad.txt:2: expected"):
        read_paddleocr_labels(bad, skip_malformed=False)            # what evaluate.py uses


# ----------------------------------------------------------------------------- broken labelme files
def labelme_file(path, shapes, image_path=None):
    data = {"version": "5.2.1", "shapes": shapes, "imagePath": image_path or f"{Path(path).stem}.jpg",
            "imageData": None, "imageHeight": 48, "imageWidth": 64}
    return write(path, json.dumps(data, indent=2))


def shape(label, points, kind="polygon"):
    return {"label": label, "points": points, "shape_type": kind, "flags": {}}


SQUARE = [[1, 1], [20, 1], [20, 20], [1, 20]]


@pytest.mark.parametrize("kind, points", [("line", [[1, 1], [20, 20]]), ("point", [[5, 5]]),
                                          ("circle", [[10, 10], [15, 10]]), ("linestrip", SQUARE[:3])])
def test_labelme_shapes_that_are_not_areas_are_skipped_or_raised(kind, points, tmp_path, caplog):
    path = labelme_file(tmp_path / "x.json", [shape("a", SQUARE), shape("b", points, kind)])
    with caplog.at_level(logging.WARNING):
        polygons, ignore, texts = read_annotation(path, "labelme")
    assert texts == ["a"] and len(polygons) == 1
    assert f"x.json:shapes[1] ('b'): shape_type '{kind}' is not a text area" in caplog.text
    with pytest.raises(AnnotationError, match=rf"x.json:shapes\[1\] \('b'\): shape_type '{kind}'"):
        read_annotation(path, "labelme", strict=True)


@pytest.mark.parametrize("shapes, reason", [
    ([shape("a", [[1, 1], [9, 9], [5, 1]], "rectangle")], r"shapes\[0\] \('a'\): a rectangle needs 2 corner points"),
    ([shape("a", [1, 1, 9, 1, 9, 9])], r"shapes\[0\] \('a'\): 'points' must be a list of \[x, y\] pairs"),
    ([shape("a", SQUARE), shape("b", [[1, 1], [9, None], [9, 9]])], r"shapes\[1\] \('b'\): non-numeric point"),
    ([shape("a", SQUARE), "oops"], r"shapes\[1\]: not an object"),
])
def test_malformed_labelme_shapes_raise_in_both_modes(shapes, reason, tmp_path):
    path = labelme_file(tmp_path / "x.json", shapes)
    for strict in (False, True):
        with pytest.raises(AnnotationError, match=rf"x.json:{reason}"):
            read_annotation(path, "labelme", strict=strict)


def test_labelme_file_level_problems(tmp_path, caplog):
    broken = write(tmp_path / "imgs/a.json", '{\n  "shapes": [\n    oops\n  ]\n}')
    with pytest.raises(AnnotationError, match="a.json:3: malformed JSON"):
        read_annotation(broken, "labelme")
    with pytest.raises(AnnotationError, match="no 'shapes' list"):
        read_annotation(write(tmp_path / "c.json", '{"version": "5.2.1"}'), "labelme")
    shutil.copy(FIXTURES / "labelme/imgs/a.jpg", tmp_path / "imgs/a.jpg")
    shutil.copy(FIXTURES / "labelme/imgs/b.png", tmp_path / "imgs/b.png")
    labelme_file(tmp_path / "imgs/b.json", [shape("b", SQUARE)], image_path="..\\photos\\b.png")   # Windows path
    spec = {"format": "labelme", "images": str(tmp_path / "imgs"), "labels": str(tmp_path / "imgs")}
    with caplog.at_level(logging.WARNING):
        samples = read_dataset(spec)                                # a.json malformed: that sample skipped
    assert [Path(s.image_path).name for s in samples] == ["b.png"] and "a.json:3: malformed JSON" in caplog.text
    with pytest.raises(AnnotationError, match="a.json:3"):
        read_dataset(spec, strict=True)
    copied = labelme_file(tmp_path / "d.json", [shape("d", SQUARE)], image_path="e.jpg")    # copied from e.json?
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert read_annotation(copied, "labelme")[2] == ["d"]
    assert "d.json: imagePath 'e.jpg' names another image" in caplog.text
    with pytest.raises(AnnotationError, match="d.json: imagePath 'e.jpg' names another image"):
        read_annotation(copied, "labelme", strict=True)


def test_labelme_non_finite_coordinates_are_dropped(tmp_path, caplog):
    path = labelme_file(tmp_path / "x.json", [shape("a", SQUARE), shape("b", [[0, 0], [1e39, 0], [9, 9]]),
                                              shape("c", [[0, 0], [10 ** 400, 0]], "rectangle")])
    with caplog.at_level(logging.WARNING):
        assert read_annotation(path, "labelme")[2] == ["a"]
    assert "shapes[1] ('b'): non-finite coordinate" in caplog.text
    assert "shapes[2] ('c'): non-finite coordinate" in caplog.text
    with pytest.raises(AnnotationError, match=r"shapes\[1\] \('b'\): non-finite coordinate"):
        read_annotation(path, "labelme", strict=True)


# ----------------------------------------------------------------------------- training pipeline
def test_pipeline_examples_from_both_formats():
    """Val examples (64 x 48 -> scale 1, padded to 64 x 64): text where the care polygons are, masked don't-care."""
    from db_tf.config import load_config
    from db_tf.data.pipeline import ExampleMaker

    cfg = load_config()
    cfg.DATA.IMAGE_SIZE, cfg.DATA.STRICT = 64, True
    cfg.DATA.TRAIN = cfg.DATA.VAL = [PADDLE, LABELME]
    val = ExampleMaker(cfg, "val")
    assert len(val) == 5                                            # 3 PaddleOCR images + 2 labelme images
    labels = [val.example(i)[1] for i in range(5)]
    for i, x, y in ((0, 22, 9), (1, 40, 35), (3, 22, 9), (3, 52, 37), (4, 42, 37)):   # care polygon centres
        assert labels[i]["gt"][y, x] == 1 and labels[i]["mask"][y, x] == 1, (i, x, y)
    for i, x, y in ((0, 20, 25), (0, 50, 35), (1, 11, 7), (3, 20, 25)):                 # ###, difficult, *
        assert labels[i]["gt"][y, x] == 0 and labels[i]["mask"][y, x] == 0, (i, x, y)
    assert labels[2]["gt"].sum() == 0 and labels[2]["mask"].min() == 1                 # no text at all
    train = ExampleMaker(cfg, "train")
    for position in range(len(train)):                              # augmented crops build as well
        image, maps = train.example(position)
        assert image.shape == (64, 64, 3) and all(m.shape == (64, 64) for m in maps.values())


# ----------------------------------------------------------------------------- evaluate.py --gt-format
def box_line(x0, y0, x1, y1, score):
    return ",".join(str(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1, score)) + "\n"


def run_evaluate(args, tmp_path):
    report = tmp_path / "report.json"
    assert evaluate.main([*args, "--per-image", str(report)]) == 0
    totals = json.loads(report.read_text())["totals"]
    return totals["gt_care"], totals["det_care"], totals["matched"]


def test_evaluate_paddleocr_label_file(tmp_path, capsys):
    pred = tmp_path / "pred"
    write(pred / "res_1.txt", box_line(4, 4, 40, 14, 0.9) + box_line(12, 21, 29, 29, 0.8))   # Hello; inside ###
    write(pred / "res_2.txt", box_line(30, 31, 50, 40, 0.7))                                  # ok (IoU 0.9)
    write(pred / "res_3.txt", box_line(5, 5, 25, 25, 0.6))                                    # false positive
    gt = ["--gt", str(FIXTURES / "paddleocr/Label.txt"), "--gt-format", "paddleocr"]
    # care GT: Hello, ok; care detections: 4 minus the one inside ###; matched: Hello, ok
    assert run_evaluate(["--pred", str(pred), *gt], tmp_path) == (2, 3, 2)
    write(pred / "res_9.txt", box_line(5, 5, 25, 25, 0.6))
    assert evaluate.main(["--pred", str(pred), *gt]) == 2
    assert "detection files without a paddleocr GT" in capsys.readouterr().err            # image 9 has no line
    (pred / "res_9.txt").unlink()
    label = write(tmp_path / "Label.txt", (FIXTURES / "paddleocr/Label.txt").read_text(encoding="utf-8")
                  + "other/1.png\t[]\n")
    assert evaluate.main(["--pred", str(pred), "--gt", str(label), "--gt-format", "paddleocr"]) == 2
    assert "Label.txt:4: image other/1.png has the stem 1 of line 1" in capsys.readouterr().err
    write(label, GOOD + "\nimgs/2.jpg no tab\n")
    assert evaluate.main(["--pred", str(pred), "--gt", str(label), "--gt-format", "paddleocr"]) == 2
    assert "Label.txt:2: expected 'image path<TAB>JSON list'" in capsys.readouterr().err
    assert evaluate.main(["--pred", str(pred), "--gt", str(tmp_path), "--gt-format", "paddleocr"]) == 2
    assert "is not a file" in capsys.readouterr().err


def test_evaluate_labelme_folder_and_ignore_labels(tmp_path, capsys):
    pred = tmp_path / "pred"
    write(pred / "res_a.txt", box_line(4, 4, 40, 14, 0.9))
    write(pred / "b.json", json.dumps({"polygons": [PENTAGON], "scores": [0.8]}))
    gt = ["--gt", str(FIXTURES / "labelme/imgs"), "--gt-format", "labelme"]              # JSON next to the images
    assert run_evaluate(["--pred", str(pred), *gt], tmp_path) == (3, 2, 2)               # "box" is missed
    assert run_evaluate(["--pred", str(pred), *gt, "--gt-ignore-label", "###", "--gt-ignore-label", "box"],
                        tmp_path) == (2, 2, 2)
    with pytest.raises(SystemExit):
        evaluate.main(["--pred", str(pred), "--gt", str(FIXTURES / "icdar2015/gts"), "--gt-ignore-label", "box"])
    assert "--gt-ignore-label applies to --gt-format labelme" in capsys.readouterr().err


def test_evaluate_images_mode_reads_paddleocr_gt_by_image_stem(tmp_path, monkeypatch):
    from test_detector import PixelModel

    from db_tf.cli import detect as inference
    from db_tf.detector import TextDetector

    monkeypatch.setattr(inference, "detector_from_args",
                        lambda args, cfg: TextDetector(model=PixelModel(), short_side=64, max_side=0))
    report = tmp_path / "r.json"
    assert evaluate.main(["--images", str(FIXTURES / "paddleocr/imgs"), "--gt", PADDLE["labels"],
                          "--gt-format", "paddleocr", "--per-image", str(report)]) == 0
    result = json.loads(report.read_text())
    assert sorted(result["images"]) == ["1", "2", "3"]
    assert [result["images"][k]["gt_care"] for k in ("1", "2", "3")] == [1, 1, 0]   # Hello; ok; none
