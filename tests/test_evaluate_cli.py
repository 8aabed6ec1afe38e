"""evaluate.py run in-process on hand-built GT and detection folders whose scores are worked out by hand."""
import json

import cv2
import numpy as np
import pytest
from test_detector import PixelModel

from db_tf.cli import detect as inference
from db_tf.cli import evaluate
from db_tf.detector import TextDetector


def box_line(x0, y0, x1, y1, *extra):
    return ",".join(str(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1, *extra)) + "\n"


@pytest.fixture
def dataset(tmp_path):
    """img_1: two care GT + one ###; img_2: one care GT; img_3: only ###.
    Detections (score): img_1 -> GT 1 exactly (0.9), a poor fit of GT 2 (0.8), one inside the ### (0.95);
    img_2 -> its GT (0.5); img_3 -> one detection (0.7), a false positive (no care GT)."""
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    (gt / "gt_img_1.txt").write_text("\ufeff" + box_line(0, 0, 100, 20, "hello")
                                     + box_line(0, 50, 100, 70, "a,b") + box_line(200, 0, 300, 40, "###"))
    (gt / "gt_img_2.txt").write_text(box_line(10, 10, 60, 30, "x"))
    (gt / "gt_img_3.txt").write_text(box_line(10, 10, 60, 30, "###"))
    (pred / "res_img_1.txt").write_text(box_line(0, 0, 100, 20, 0.9) + box_line(0, 50, 40, 70, 0.8)
                                        + box_line(210, 5, 290, 35, 0.95))
    (pred / "res_img_2.txt").write_text(box_line(12, 10, 60, 30, 0.5))
    (pred / "res_img_3.txt").write_text(box_line(100, 100, 150, 120, 0.7))
    return gt, pred


def totals_of(out_json):
    return json.loads(out_json.read_text())["totals"]


def test_hand_worked_totals_and_per_image_json(dataset, tmp_path, capsys):
    gt, pred = dataset
    report = tmp_path / "per_image.json"
    assert evaluate.main(["--pred", str(pred), "--gt", str(gt), "--per-image", str(report)]) == 0
    totals = totals_of(report)
    # care GT 3; care detections 2 + 1 + 1 (the ### one removed); matches 2
    assert (totals["gt_care"], totals["det_care"], totals["matched"]) == (3, 4, 2)
    assert totals["precision"] == pytest.approx(0.5) and totals["recall"] == pytest.approx(2 / 3)
    assert totals["hmean"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    images = json.loads(report.read_text())["images"]
    assert images["img_1"]["det_dont_care"] == [2] and images["img_1"]["pairs"] == [[0, 0]]
    assert images["img_3"]["precision"] == 0.0 and images["img_3"]["recall"] == 1.0
    assert "precision 0.5000  recall 0.6667  hmean 0.5714" in capsys.readouterr().out


def test_sweep_reports_each_threshold_and_the_best(dataset, capsys):
    gt, pred = dataset
    assert evaluate.main(["--pred", str(pred), "--gt", str(gt), "--sweep", "--sweep-range", "0.3", "0.9",
                          "0.05"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert len(lines) == 13  # 0.30 .. 0.90
    # >= 0.55 drops img_2's 0.5; >= 0.75 also img_3's 0.7; >= 0.85 also the poor 0.8 fit
    assert "hmean 0.5714" in lines["0.50"] and "precision 0.3333  recall 0.3333" in lines["0.55"]
    assert "precision 0.5000  recall 0.3333" in lines["0.75"] and "precision 1.0000  recall 0.3333" in lines["0.85"]
    assert out.index("precision 0.5000  recall 0.6667") < out.index("box_thresh sweep")  # fixed result first
    assert "best hmean 0.5714 at box_thresh 0.30" in out


def test_bootstrap_interval_is_printed_around_the_score(dataset, capsys):
    gt, pred = dataset
    assert evaluate.main(["--pred", str(pred), "--gt", str(gt), "--bootstrap", "200"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("hmean 95% interval"))
    low, high = float(line.split()[3]), float(line.split()[5])
    assert low <= 0.5714 <= high and "200 bootstrap resamples of the" in line


def test_compare_to_another_per_image_report(dataset, tmp_path, capsys):
    gt, pred = dataset
    baseline = tmp_path / "baseline.json"
    assert evaluate.main(["--pred", str(pred), "--gt", str(gt), "--per-image", str(baseline)]) == 0
    (pred / "res_img_1.txt").write_text(box_line(0, 0, 100, 20, 0.9) + box_line(0, 50, 100, 70, 0.8))  # fits GT 2
    capsys.readouterr()
    assert evaluate.main(["--pred", str(pred), "--gt", str(gt), "--compare-to", str(baseline),
                          "--bootstrap", "300"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("hmean minus"))
    # 3 of 3 care words with 4 care detections (img_3's false positive stays): hmean 6/7, against 2 of 3 (4/7)
    assert f"{6 / 7 - 4 / 7:+.4f}" in line and "300 paired bootstrap resamples of the 3 images" in line
    (gt / "gt_img_4.txt").write_text(box_line(10, 10, 60, 30, "y"))
    assert evaluate.main(["--pred", str(pred), "--gt", str(gt), "--compare-to", str(baseline)]) == 2
    assert "scored other images (only here: img_4; only there: none)" in capsys.readouterr().err
    baseline.write_text("[1, 2]")
    assert evaluate.main(["--pred", str(pred), "--gt", str(gt), "--compare-to", str(baseline)]) == 2
    assert f"--compare-to {baseline}: not a per-image JSON" in capsys.readouterr().err


def test_missing_orphan_and_scoreless_detection_files(dataset, tmp_path, capsys):
    gt, pred = dataset
    (pred / "res_img_2.txt").unlink()  # img_2 now has no detections: its GT is missed
    report = tmp_path / "r.json"
    assert evaluate.main(["--pred", str(pred), "--gt", str(gt), "--per-image", str(report)]) == 0
    assert (totals_of(report)["gt_care"], totals_of(report)["matched"], totals_of(report)["det_care"]) == (3, 1, 3)
    assert evaluate.main(["--pred", str(pred), "--gt", str(gt), "--only-predicted", "--per-image", str(report)]) == 0
    assert (totals_of(report)["gt_care"], totals_of(report)["images"]) == (2, 2)
    (pred / "res_img_9.txt").write_text(box_line(0, 0, 5, 5))
    assert evaluate.main(["--pred", str(pred), "--gt", str(gt)]) == 2
    assert "img_9" in capsys.readouterr().err
    (pred / "res_img_9.txt").unlink()
    (pred / "res_img_1.txt").write_text(box_line(0, 0, 100, 20))
    (pred / "res_img_3.txt").write_text(box_line(0, 0, 100, 20))
    assert evaluate.main(["--pred", str(pred), "--gt", str(gt), "--sweep"]) == 2
    assert "needs scores" in capsys.readouterr().err


def _shrunk(x0, y0, x1, y1, ratio=0.4):
    """The DB label's shrunk rectangle: inset by D = A (1 - r^2) / L."""
    w, h = x1 - x0, y1 - y0
    d = w * h * (1 - ratio ** 2) / (2 * (w + h))
    return [int(round(v)) for v in (x0 + d, y0 + d, x1 - d, y1 - d)]


def test_images_mode_runs_the_model_and_scores_it(tmp_path, monkeypatch, capsys):
    """With the per-pixel fake model, a white shrunk text region is found and unclipped back to ~the GT."""
    monkeypatch.setattr(inference, "detector_from_args",
                        lambda args, cfg: TextDetector(model=PixelModel(), short_side=128, max_side=0))
    images, gt = tmp_path / "imgs", tmp_path / "gt"
    images.mkdir()
    gt.mkdir()
    care_a, dont_care_b = (20, 20, 220, 80), (20, 100, 220, 150)
    care_c, missed_d = (30, 30, 230, 90), (30, 120, 230, 170)
    for name, painted, lines in (
            ("img_1", (care_a, dont_care_b), box_line(*care_a, "A") + box_line(*dont_care_b, "###")),
            ("img_2", (care_c,), box_line(*care_c, "C") + box_line(*missed_d, "D"))):
        image = np.zeros((200, 260, 3), np.uint8)
        for rect in painted:
            x0, y0, x1, y1 = _shrunk(*rect)
            image[y0:y1 + 1, x0:x1 + 1] = 255
        cv2.imwrite(str(images / f"{name}.png"), image)
        (gt / f"gt_{name}.txt").write_text(lines)
    report = tmp_path / "r.json"
    assert evaluate.main(["--images", str(images), "--gt", str(gt), "--per-image", str(report), "--sweep"]) == 0
    totals = totals_of(report)
    # A and C found; B's detection lies inside the ### and is removed; D is missed
    assert (totals["gt_care"], totals["det_care"], totals["matched"]) == (3, 2, 2)
    assert "at box_thresh 0.60" in capsys.readouterr().out
    (images / "img_3.png").write_bytes(b"")  # an image without GT
    assert evaluate.main(["--images", str(images), "--gt", str(gt)]) == 2
    assert "img_3.png" in capsys.readouterr().err


def test_model_flags_need_images(dataset):
    gt, pred = dataset
    with pytest.raises(SystemExit):
        evaluate.main(["--pred", str(pred), "--gt", str(gt), "--box-thresh", "0.5"])


@pytest.mark.parametrize("fmt, name, stem", [("polygon_txt", "gt_img_1.txt", "img_1"),
                                             ("polygon_txt", "img_1.txt", "img_1"),
                                             ("icdar2015", "gt_img_1.txt", "img_1"),
                                             ("icdar2015", "img_1.txt", None),
                                             ("ctw1500", "0001.xml", "0001")])
def test_gt_file_names_map_to_image_stems(fmt, name, stem):
    assert evaluate.gt_key(name, fmt) == stem


@pytest.mark.parametrize("value", ["1e39", "nan", "inf"])
def test_non_finite_gt_coordinate_is_dropped_with_a_warning(value, dataset, tmp_path, caplog):
    """A GT polygon beyond float32 is dropped (logged with file:line); the rest of the set is scored."""
    gt, pred = dataset
    (gt / "gt_img_2.txt").write_text(box_line(10, 10, 60, 30, "x") + f"0,0,{value},0,50,50,0,50,huge\n")
    report = tmp_path / "r.json"
    assert evaluate.main(["--pred", str(pred), "--gt", str(gt), "--per-image", str(report)]) == 0
    assert (totals_of(report)["gt_care"], totals_of(report)["matched"]) == (3, 2)       # as without the line
    assert "gt_img_2.txt:2: non-finite coordinate" in caplog.text


@pytest.mark.parametrize("name, text", [("res_img_2.txt", "0,0,1e39,0,50,50,0,50,0.9\n"),
                                        ("res_img_2.txt", "0,0,10,0,10,10,0,10,nan\n"),
                                        ("res_img_2.json", '{"polygons": [[[0, 0], [1e39, 0], [50, 50]]]}'),
                                        ("res_img_2.json", '{"polygons": [[[0, 0], [' + "1" * 400 + ', 0], '
                                                           '[50, 50]]]}'),
                                        ("res_img_2.json", '{"polygons": [[[0, 0], [9, 0], [9, 9]]], '
                                                           '"scores": [NaN]}')],
                         ids=["txt_1e39", "txt_nan_score", "json_1e39", "json_int_1e400", "json_nan_score"])
def test_non_finite_detection_is_an_error_naming_the_file(name, text, dataset, capsys):
    gt, pred = dataset
    (pred / "res_img_2.txt").unlink()
    (pred / name).write_text(text)
    assert evaluate.main(["--pred", str(pred), "--gt", str(gt)]) == 2
    err = capsys.readouterr().err
    assert f"{name}{':1' if name.endswith('.txt') else ''}: " in err and "finite" in err


def test_evaluate_takes_the_tile_and_precision_flags():
    from db_tf.cli import evaluate

    args = evaluate.build_parser().parse_args(["--images", "i", "--gt", "g", "--tile", "512", "--tile-overlap", "64",
                                               "--precision", "bfloat16"])
    assert (args.tile, args.tile_overlap, args.tile_scale, args.precision) == (512, 64, None, "bfloat16")
