"""Dataset readers (db_tf/data/readers.py): every format from fixtures, bad input, real-data traps."""
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from db_tf.data.image_io import read_image
from db_tf.data.readers import AnnotationError, Sample, read_annotation, read_dataset, read_datasets, sampling_weights

FIXTURES = Path(__file__).parent / "fixtures"
CURVE_TOP = [(4 + 8 * i, 6 - (i % 2)) for i in range(7)]
CURVE_BOTTOM = [(4 + 8 * i, 18 + (i % 2)) for i in reversed(range(7))]
CURVE = np.array(CURVE_TOP + CURVE_BOTTOM, np.float32)


def spec(fmt, folder=None, **extra):
    folder = FIXTURES / (folder or fmt)
    return {"format": fmt, "images": str(folder / "imgs"), "labels": str(folder / "gts"), "ratio": 1.0, **extra}


def rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


# ----------------------------------------------------------------------------- each format
def test_icdar2015_bom_commas_and_dont_care():
    polygons, ignore, texts = read_annotation(FIXTURES / "icdar2015/gts/gt_img_1.txt", "icdar2015")
    np.testing.assert_array_equal(polygons[0], rect(4, 4, 40, 14))
    np.testing.assert_array_equal(polygons[2], rect(45, 30, 60, 44))
    assert texts == ["Hello, world", "###", "$5,000"]
    assert ignore.tolist() == [False, True, False]
    assert all(p.dtype == np.float32 and p.shape == (4, 2) for p in polygons)


def test_msra_td500_rotated_rectangles():
    polygons, ignore, texts = read_annotation(FIXTURES / "msra_td500/gts/IMG_0001.gt", "msra_td500")
    np.testing.assert_allclose(polygons[0], rect(10, 10, 40, 18), atol=1e-5)   # theta = 0
    assert ignore.tolist() == [False, True, False]                              # difficult = 1
    # box 1: 20 x 10 centred on (30, 30), rotated by 0.5 rad (y down: clockwise on screen)
    p = polygons[1].astype(np.float64)
    np.testing.assert_allclose(p.mean(axis=0), (30, 30), atol=1e-4)
    np.testing.assert_allclose([np.hypot(*(p[1] - p[0])), np.hypot(*(p[2] - p[1]))], [20, 10], atol=1e-4)
    assert math.atan2(p[1, 1] - p[0, 1], p[1, 0] - p[0, 0]) == pytest.approx(0.5, abs=1e-5)
    assert polygons[2][:, 0].max() > 64                                         # past the border: kept


def test_totaltext_wrapped_records_and_quotes():
    polygons, ignore, texts = read_annotation(FIXTURES / "totaltext/gts/poly_gt_img11.txt", "totaltext")
    np.testing.assert_array_equal(polygons[0], np.array([[5, 5], [20, 3], [35, 5], [35, 15], [20, 13], [5, 15]]))
    np.testing.assert_array_equal(polygons[1], rect(40, 20, 60, 30))            # record split over 2 lines
    assert texts == ["curve", ",", "#", "it's"]
    assert ignore.tolist() == [False, False, True, False]


def test_ctw1500_txt_both_forms_and_xml():
    polygons, ignore, texts = read_annotation(FIXTURES / "ctw1500/gts/0001.txt", "ctw1500")
    np.testing.assert_array_equal(polygons[0], CURVE)
    np.testing.assert_array_equal(polygons[1], CURVE + (0, 24))
    assert texts[0] == "Latin, 9" and ignore.tolist() == [False, True]
    original, ignore3, _ = read_annotation(FIXTURES / "ctw1500/gts/0003.txt", "ctw1500")   # 32-value form
    np.testing.assert_array_equal(original[0], CURVE)
    assert ignore3.tolist() == [False]
    xml_polygons, xml_ignore, xml_texts = read_annotation(FIXTURES / "ctw1500/gts/0002.xml", "ctw1500")
    np.testing.assert_array_equal(xml_polygons[0], CURVE)                        # <segs>, not <pts>
    np.testing.assert_array_equal(xml_polygons[1], CURVE + (0, 24))
    assert xml_texts == ["OLATHE", "###"] and xml_ignore.tolist() == [False, True]


def test_polygon_txt_numeric_transcription():
    polygons, ignore, texts = read_annotation(FIXTURES / "polygon_txt/gts/p1.txt", "polygon_txt")
    np.testing.assert_array_equal(polygons[1], np.array([[30, 30], [50, 28], [55, 40], [40, 45], [32, 42]]))
    assert texts == ["hello", "2020", "###"]
    assert ignore.tolist() == [False, False, True] and polygons[2].shape == (3, 2)


def test_mmocr_json():
    samples = read_dataset({"format": "mmocr", "images": str(FIXTURES / "mmocr"),
                            "labels": str(FIXTURES / "mmocr/textdet_train.json")})
    assert [Path(s.image_path).name for s in samples] == ["a.jpg", "b.jpg"]
    np.testing.assert_array_equal(samples[0].polygons[0], rect(4, 4, 40, 14))
    assert samples[0].ignore.tolist() == [False, True] and samples[0].texts[0] == "abc"
    np.testing.assert_array_equal(samples[1].polygons[0], rect(5, 6, 25, 16))    # from "bbox"


@pytest.mark.parametrize("fmt,count", [("icdar2015", 2), ("msra_td500", 1), ("totaltext", 1),
                                       ("ctw1500", 3), ("polygon_txt", 1)])
def test_read_dataset_pairs_images_with_gt(fmt, count):
    samples = read_dataset(spec(fmt), strict=True)
    assert len(samples) == count
    for sample in samples:
        assert isinstance(sample, Sample) and len(sample.polygons) == len(sample.ignore) == len(sample.texts)
        assert sample.ignore.dtype == bool
        assert read_image(sample.image_path).shape == (48, 64, 3)


# ----------------------------------------------------------------------------- bad input
def write(path, text, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_malformed_line_names_file_and_line_in_both_modes(tmp_path):
    gt = write(tmp_path / "gt_img_1.txt", "1,1,9,1,9,9,1,9,ok\n1,1,9,x,9,9,1,9,bad\n")
    for strict in (False, True):
        with pytest.raises(AnnotationError, match=r"gt_img_1.txt:2: non-numeric"):
            read_annotation(gt, "icdar2015", strict=strict)
    short = write(tmp_path / "short.gt", "0 0 1 2 3\n")
    with pytest.raises(AnnotationError, match=r"short.gt:1: expected 'index difficult"):
        read_annotation(short, "msra_td500")


def test_malformed_gt_skips_the_sample_in_training_mode(tmp_path, caplog):
    folder = tmp_path / "icdar"
    shutil.copytree(FIXTURES / "icdar2015", folder)
    write(folder / "gts/gt_img_2.txt", "1,1,9,1,9,9,1,9,ok\ngarbage line\n")
    with caplog.at_level(logging.WARNING):
        samples = read_dataset({"format": "icdar2015", "images": str(folder / "imgs"), "labels": str(folder / "gts")})
    assert [Path(s.image_path).name for s in samples] == ["img_1.jpg"]
    assert "gt_img_2.txt:2" in caplog.text and "skipped" in caplog.text
    with pytest.raises(AnnotationError, match=r"gt_img_2.txt:2"):
        read_dataset({"format": "icdar2015", "images": str(folder / "imgs"), "labels": str(folder / "gts")},
                     strict=True)


def test_geometric_problems_dropped_repaired_or_raised(tmp_path, caplog):
    gt = write(tmp_path / "p.txt",
               "0,0,10,0,10,10,0,10,good\n"
               "0,0,5,5,0,0,5,5,two points\n"            # < 3 distinct points
               "0,0,5,5,10,10,20,20,collinear\n"         # zero area
               "0,0,10,10,10,0,0,10,bowtie\n"            # self-intersecting
               "-5,-5,10,-5,10,5,-5,5,outside\n")        # points outside any image: kept
    with caplog.at_level(logging.WARNING):
        polygons, ignore, texts = read_annotation(gt, "icdar2015")
    assert texts == ["good", "bowtie", "outside"]
    assert ignore.tolist() == [False, True, False]                  # repaired bow-tie is ignored
    np.testing.assert_array_equal(np.sort(polygons[1], axis=0), np.sort(rect(0, 0, 10, 10), axis=0))
    assert polygons[2].min() == -5
    for line, problem in ((2, "distinct point"), (3, "zero area"), (4, "self-intersecting")):
        assert f"p.txt:{line}: " in caplog.text and problem in caplog.text
    for line, problem in ((2, "distinct point"), (3, "zero area"), (4, "self-intersecting")):
        lines = open(gt).read().splitlines()
        single = write(tmp_path / f"only{line}.txt", lines[line - 1] + "\n")
        with pytest.raises(AnnotationError, match=problem):
            read_annotation(single, "icdar2015", strict=True)


def test_duplicate_and_closing_points_are_removed(tmp_path):
    gt = write(tmp_path / "d.txt", "0,0,10,0,10,0,10,10,0,10,0,0,closed\n")
    polygons, _, _ = read_annotation(gt, "polygon_txt", strict=True)
    np.testing.assert_array_equal(polygons[0], rect(0, 0, 10, 10))


def test_unreadable_gt_files(tmp_path):
    with pytest.raises(AnnotationError, match="not found"):
        read_annotation(tmp_path / "nope.txt", "icdar2015")
    latin1 = write(tmp_path / "l.txt", "1,1,9,1,9,9,1,9,ok\n1,1,9,1,9,9,1,9,caf\xe9\n", encoding="latin-1")
    with pytest.raises(AnnotationError, match=r"l.txt:2: not valid UTF-8"):
        read_annotation(latin1, "icdar2015")
    broken = write(tmp_path / "b.xml", "<Annotations>\n<image>\n<box><segs>1,2</box>\n</Annotations>\n")
    with pytest.raises(AnnotationError, match=r"b.xml:3: malformed XML"):
        read_annotation(broken, "ctw1500")
    uneven = write(tmp_path / "poly_gt_x.txt", "x: [[1 2 3]], y: [[1 2]], ornt: [u'h'], transcriptions: [u'a']\n")
    with pytest.raises(AnnotationError, match=r"poly_gt_x.txt:1: 3 x values but 2 y values"):
        read_annotation(uneven, "totaltext")
    with pytest.raises(ValueError, match="unknown"):
        read_annotation(uneven, "coco")
    empty = write(tmp_path / "e.txt", "\ufeff\n")
    polygons, ignore, texts = read_annotation(empty, "icdar2015", strict=True)
    assert polygons == [] and ignore.shape == (0,) and texts == []


def test_images_without_gt_and_gt_without_images_are_reported(tmp_path, caplog):
    folder = tmp_path / "msra"
    shutil.copytree(FIXTURES / "msra_td500", folder)
    shutil.copy(folder / "imgs/IMG_0001.JPG", folder / "imgs/IMG_0002.JPG")     # no GT
    write(folder / "gts/IMG_0009.gt", "0 0 1 1 20 20 0\n")                      # no image
    dataset = {"format": "msra_td500", "images": str(folder / "imgs"), "labels": str(folder / "gts")}
    with caplog.at_level(logging.WARNING):
        samples = read_dataset(dataset)
    assert [Path(s.image_path).name for s in samples] == ["IMG_0001.JPG"]
    assert "IMG_0002.JPG (expected IMG_0002.gt)" in caplog.text and "IMG_0009.gt" in caplog.text
    with pytest.raises(AnnotationError, match="images without a ground-truth file.*IMG_0002.JPG"):
        read_dataset(dataset, strict=True)


def test_mmocr_bad_entries(tmp_path, caplog):
    shutil.copytree(FIXTURES / "mmocr/imgs", tmp_path / "imgs")
    json_path = write(tmp_path / "t.json",
                      '{"data_list": [{"img_path": "imgs/a.jpg", "instances": [{"polygon": [1, 2, 3]}]},\n'
                      ' {"img_path": "imgs/missing.jpg", "instances": []},\n'
                      ' {"img_path": "imgs/b.jpg", "instances": [{"polygon": [1, 1, 9, 1, 9, 9], "ignore": true}]}]}')
    dataset = {"format": "mmocr", "images": str(tmp_path), "labels": str(json_path)}
    with caplog.at_level(logging.WARNING):
        samples = read_dataset(dataset)
    assert [Path(s.image_path).name for s in samples] == ["b.jpg"] and samples[0].ignore.tolist() == [True]
    assert "data_list[0] (imgs/a.jpg) instances[0]" in caplog.text and "missing.jpg not found" in caplog.text
    with pytest.raises(AnnotationError, match=r"instances\[0\]"):
        read_dataset(dataset, strict=True)
    bad = write(tmp_path / "bad.json", '{"data_list": [\n  {"img_path": "a"},\n  oops]}')
    with pytest.raises(AnnotationError, match=r"bad.json:3: malformed JSON"):
        read_dataset({"format": "mmocr", "labels": str(bad)})


def test_bad_specs():
    with pytest.raises(ValueError, match="format"):
        read_dataset({"format": "coco", "images": "x", "labels": "y"})
    with pytest.raises(ValueError, match="does not exist"):
        read_dataset({"format": "icdar2015", "images": "/nonexistent", "labels": "/nonexistent"})
    with pytest.raises(ValueError, match="ratio"):
        read_dataset(spec("icdar2015", ratio=0))


HUGE = "1" + "0" * 40                       # a plain decimal 1e40: finite in float64, inf in float32
CTW_LINE = ",".join([f"{10 * i},0" for i in range(6)] + ["{x},0", "{x},10"]
                    + [f"{10 * i},10" for i in reversed(range(6))])          # 14 points, x of the right end
GOOD_AND_BAD = {   # format -> (file name, a good polygon on line 1, a non-finite one on line 2)
    "icdar2015": ("gt_1.txt", "0,0,10,0,10,10,0,10,good\n0,0,1e39,0,10,10,0,10,huge\n"),
    "msra_td500": ("1.gt", "0 0 10 10 30 8 0.0\n1 0 10 10 1e39 8 0.0\n"),
    "totaltext": ("poly_gt_1.txt", "x: [[0 10 10 0]], y: [[0 0 10 10]], ornt: [u'h'], transcriptions: [u'a']\n"
                                   "x: [[0 1e39 10 0]], y: [[0 0 10 10]], ornt: [u'h'], transcriptions: [u'b']\n"),
    "ctw1500": ("1.txt", CTW_LINE.format(x="60") + ",####a\n" + CTW_LINE.format(x=HUGE) + ",####b\n"),
    "polygon_txt": ("1.txt", f"0,0,10,0,10,10,good\n0,0,{HUGE},0,10,10,huge\n"),
}


@pytest.mark.parametrize("fmt", sorted(GOOD_AND_BAD))
def test_coordinates_beyond_float32_are_dropped_or_raised(fmt, tmp_path, caplog):
    name, text = GOOD_AND_BAD[fmt]
    gt = write(tmp_path / name, text)
    with caplog.at_level(logging.WARNING):
        polygons, ignore, _ = read_annotation(gt, fmt)
    assert len(polygons) == len(ignore) == 1 and all(np.isfinite(p).all() for p in polygons)
    assert f"{name}:2: non-finite coordinate" in caplog.text and "dropped" in caplog.text
    with pytest.raises(AnnotationError, match=rf"{name}:2: non-finite coordinate"):
        read_annotation(gt, fmt, strict=True)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1e39", "3.5e38"])
def test_nan_inf_and_overflow_text_in_icdar2015(value, tmp_path):
    gt = write(tmp_path / "gt_1.txt", f"0,0,10,0,10,10,0,10,good\n0,0,{value},0,10,10,0,10,bad\n")
    assert len(read_annotation(gt, "icdar2015")[0]) == 1
    with pytest.raises(AnnotationError, match=r"gt_1.txt:2: non-finite coordinate"):
        read_annotation(gt, "icdar2015", strict=True)
    near_max = write(tmp_path / "gt_2.txt", "0,0,3.4e38,0,10,10,0,10,big but finite\n")   # float32 max 3.40282e38
    assert np.isfinite(read_annotation(near_max, "icdar2015", strict=True)[0][0]).all()


@pytest.mark.parametrize("value", ["1e39", "NaN", "Infinity", "1" + "0" * 400],      # JSON allows NaN / Infinity
                         ids=["1e39", "NaN", "Infinity", "int_1e400"])
def test_mmocr_non_finite_coordinates(value, tmp_path, caplog):
    shutil.copytree(FIXTURES / "mmocr/imgs", tmp_path / "imgs")
    json_path = write(tmp_path / "t.json", '{"data_list": [{"img_path": "imgs/a.jpg", "instances": ['
                      f'{{"polygon": [0, 0, 10, 0, 10, 10]}}, {{"polygon": [0, 0, {value}, 0, 10, 10]}}]}}]}}')
    dataset = {"format": "mmocr", "images": str(tmp_path), "labels": str(json_path)}
    with caplog.at_level(logging.WARNING):
        samples = read_dataset(dataset)
    assert len(samples[0].polygons) == 1 and "instances[1]: non-finite coordinate" in caplog.text
    with pytest.raises(AnnotationError, match=r"instances\[1\]: non-finite coordinate"):
        read_dataset(dataset, strict=True)


# ----------------------------------------------------------------------------- mixing, selection
def test_mixing_ratios_and_select():
    samples = read_datasets([spec("icdar2015", ratio=3.0), spec("ctw1500", ratio=1.0)])
    weights = sampling_weights(samples)
    by_dataset = {}
    for s, p in zip(samples, weights):
        by_dataset[s.dataset] = by_dataset.get(s.dataset, 0) + p
    assert sorted(by_dataset.values()) == pytest.approx([0.25, 0.75])
    assert weights.sum() == pytest.approx(1.0)
    assert weights[0] == pytest.approx(0.75 / 2)                     # evenly within a dataset
    second = read_dataset(spec("icdar2015", select="1:"))
    assert [Path(s.image_path).name for s in second] == ["img_2.jpg"]


# ----------------------------------------------------------------------------- real data (../shared)
def test_real_icdar2015_counts_and_traps(shared_data):
    folder = shared_data / "icdar2015_train"
    samples = read_dataset({"format": "icdar2015", "images": str(folder / "imgs"),
                            "labels": str(folder / "gts")}, strict=True)
    assert len(samples) == 1000
    assert sum(len(s.polygons) for s in samples) == 11886
    assert sum(int((~s.ignore).sum()) for s in samples) == 4468
    texts = [t for s in samples for t in s.texts]
    assert not any(t.startswith("\ufeff") for t in texts)
    raw_lines = [line for gt in (folder / "gts").iterdir()
                 for line in gt.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    with_commas = sum(line.count(",") > 8 for line in raw_lines)    # transcriptions holding commas
    assert with_commas > 0 and sum("," in t for t in texts) == with_commas
    val = read_dataset({"format": "icdar2015", "images": str(folder / "imgs"), "labels": str(folder / "gts"),
                        "select": "900:1000"})
    assert Path(val[0].image_path).name == "img_901.jpg" and Path(val[-1].image_path).name == "img_1000.jpg"


def test_real_msra_td500_boxes_past_the_border(shared_data):
    folder = shared_data / "msra_td500_train"
    samples = read_dataset({"format": "msra_td500", "images": str(folder / "imgs"),
                            "labels": str(folder / "gts")}, strict=True)
    assert len(samples) == 300
    raw = [line.split() for gt in (folder / "gts").iterdir() for line in gt.read_text().splitlines() if line.strip()]
    assert sum(len(s.polygons) for s in samples) == len(raw)
    assert sum(int(s.ignore.sum()) for s in samples) == sum(fields[1] == "1" for fields in raw)
    past = [s for s in samples if any(p.min() < 0 for p in s.polygons)]   # kept, not clipped
    assert len(past) >= 5, "expected MSRA-TD500 boxes extending past the image border"
