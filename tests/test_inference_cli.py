"""inference.py run in-process: output formats, figures, bad images in a folder, weights and settings."""
import json

import cv2
import numpy as np
import pytest
from test_detector import PixelModel, tiny_bundle, white_rectangle  # noqa: F401  (tiny_bundle is a fixture)

from db_tf.cli import detect as inference
from db_tf.detector import TextDetector
from db_tf.metrics import read_detections


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), white_rectangle(120, 200, 20, 30, 159, 49))
    two = white_rectangle(96, 160, 10, 10, 89, 24)
    two[60:80, 40:150] = 255
    cv2.imwrite(str(folder / "b.jpg"), two)
    (folder / "notes.txt").write_text("not an image, not listed")
    return folder


@pytest.fixture
def pixel_detector(monkeypatch):
    """Make the CLI use the per-pixel fake model (known detections) with the flags' settings."""
    def fake(args, cfg):
        settings = {"polygon": args.poly, "thresh": args.thresh, "box_thresh": args.box_thresh}
        return TextDetector(model=PixelModel(), short_side=args.short_side or 96, max_side=0,
                            batch_size=args.batch_size, **{k: v for k, v in settings.items() if v is not None})
    monkeypatch.setattr(inference, "detector_from_args", fake)


def test_icdar_format_is_a_valid_submission(image_folder, tmp_path, pixel_detector):
    out = tmp_path / "res"
    assert inference.main(["--imgpath", str(image_folder), "--format", "icdar", "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["res_a.txt", "res_b.txt"]  # nothing else in the folder
    counts = {}
    for name in ("res_a.txt", "res_b.txt"):
        lines = (out / name).read_text().splitlines()
        counts[name] = len(lines)
        for line in lines:
            values = [int(v) for v in line.split(",")]  # integers only
            assert len(values) == 8
            x, y = np.array(values[0::2], float), np.array(values[1::2], float)
            assert np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0  # clockwise (y down)
    assert counts == {"res_a.txt": 1, "res_b.txt": 2}


def test_json_and_txt_formats_round_trip(image_folder, tmp_path, pixel_detector):
    out = tmp_path / "json"
    assert inference.main(["--imgpath", str(image_folder / "b.jpg"), "--output", str(out)]) == 0
    data = json.loads((out / "b.json").read_text())
    assert (data["height"], data["width"]) == (96, 160) and len(data["polygons"]) == 2
    polys, scores = read_detections(out / "b.json")
    assert len(polys) == 2 and scores.shape == (2,)
    out_txt = tmp_path / "txt"
    assert inference.main(["--imgpath", str(image_folder / "b.jpg"), "--output", str(out_txt), "--format", "txt"]) == 0
    polys_txt, scores_txt = read_detections(out_txt / "b.txt")
    for a, b in zip(polys_txt, polys):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(scores_txt, scores, atol=1e-4)
    out_poly = tmp_path / "poly"
    assert inference.main(["--imgpath", str(image_folder / "b.jpg"), "--output", str(out_poly), "--poly"]) == 0
    polys_poly, _ = read_detections(out_poly / "b.json")
    assert len(polys_poly) == 2 and all(len(p) > 4 for p in polys_poly)


def test_figures_and_show(image_folder, tmp_path, pixel_detector):
    out = tmp_path / "fig"
    assert inference.main(["--imgpath", str(image_folder / "a.png"), "--output", str(out), "--figures",
                           "--show"]) == 0
    names = sorted(p.name for p in (out / "figures").iterdir())
    assert names == sorted(f"a_{n}.jpg" for n in ("poly", "bbox", "binarize_map", "threshold_map", "binary_map",
                                                   "show"))
    bbox = cv2.imread(str(out / "figures" / "a_bbox.jpg"))
    assert bbox.shape == (120, 200, 3)
    box = read_detections(out / "a.json")[0][0].astype(int)
    x0, y0 = box[:, 0].min(), box[:, 1].min()
    assert bbox[y0, x0 + 5:x0 + 20].max() > 100 and bbox[0, 0].max() < 60  # the outline is drawn, corner not
    threshold = cv2.imread(str(out / "figures" / "a_threshold_map.jpg"), cv2.IMREAD_GRAYSCALE)
    assert abs(int(threshold.mean()) - 64) <= 2  # the fake threshold map is 0.25 everywhere


def test_unreadable_image_is_reported_and_the_folder_goes_on(image_folder, tmp_path, pixel_detector, capsys):
    (image_folder / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    (image_folder / "empty.png").write_bytes(b"")
    out = tmp_path / "res"
    assert inference.main(["--imgpath", str(image_folder), "--output", str(out), "--batch-size", "2",
                           "--no-figures"]) == 1
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "empty.png" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "b.json"]


def test_missing_inputs_and_weights_give_clear_errors(tmp_path, capsys):
    assert inference.main(["--imgpath", str(tmp_path / "nope.jpg")]) == 2
    assert "does not exist" in capsys.readouterr().err
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    assert inference.main(["--imgpath", str(image), "--weights", str(tmp_path / "none.weights.h5")]) == 2
    assert "weights file not found" in capsys.readouterr().err
    assert inference.main(["--imgpath", str(image), "--weights", "no_such_model"]) == 2
    assert "no preset 'no_such_model'" in capsys.readouterr().err


@pytest.mark.slow
def test_real_weights_and_settings_precedence(tiny_bundle, image_folder, tmp_path):  # noqa: F811
    _, folder = tiny_bundle
    json_path = str(folder / "tiny.json")
    args = inference.build_parser().parse_args(["--imgpath", "x", "--weights", json_path, "--box-thresh", "0.7",
                                                "--set", "POSTPROCESS.THRESH=0.4", "POSTPROCESS.MAX_SIDE=4000"])
    cfg = inference.config_from_args(args)
    detector = inference.detector_from_args(args, cfg)
    s = detector.settings
    # metadata (BGR, short side 64) beats the config file; --set beats metadata; flags beat everything
    assert (s["channel_order"], s["short_side"], s["thresh"], s["max_side"], s["box_thresh"]) == \
        ("BGR", 64, 0.4, 4000, 0.7)
    # --unclip without --poly sets the ratio of whichever mode runs (a config file may choose polygon mode)
    args = inference.build_parser().parse_args(["--imgpath", "x", "--weights", json_path, "--unclip", "1.7"])
    s = inference.detector_from_args(args, inference.config_from_args(args)).settings
    assert (s["unclip_ratio"], s["poly_unclip_ratio"]) == (1.7, 1.7)
    bare = inference.build_parser().parse_args(["--imgpath", "x", "--weights", str(folder / "x.weights.h5"),
                                                "--unclip", "1.8", "--poly"])
    with pytest.raises(Exception, match="weights file not found"):
        inference.detector_from_args(bare, cfg)
    out = tmp_path / "real"
    assert inference.main(["--imgpath", str(image_folder), "--weights", json_path, "--output", str(out),
                           "--format", "icdar"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["res_a.txt", "res_b.txt"]


def test_figures_are_on_by_default_except_for_icdar_submissions(image_folder, tmp_path, pixel_detector):
    out = tmp_path / "default"
    assert inference.main(["--imgpath", str(image_folder / "a.png"), "--output", str(out)]) == 0
    assert (out / "figures" / "a_poly.jpg").is_file() and (out / "figures" / "a_binary_map.jpg").is_file()
    icdar = tmp_path / "icdar"
    assert inference.main(["--imgpath", str(image_folder / "a.png"), "--output", str(icdar), "--format", "icdar"]) == 0
    assert sorted(p.name for p in icdar.iterdir()) == ["res_a.txt"]


@pytest.mark.slow
def test_tile_and_precision_flags(tiny_bundle, image_folder, tmp_path, capsys):  # noqa: F811
    from db_tf.tiling import TileSpec

    _, folder = tiny_bundle
    json_path = str(folder / "tiny.json")
    args = inference.build_parser().parse_args(["--imgpath", "x", "--weights", json_path, "--tile", "64",
                                                "--tile-overlap", "16", "--tile-scale", "0.5",
                                                "--precision", "bfloat16"])
    detector = inference.detector_from_args(args, inference.config_from_args(args))
    assert detector.tile == TileSpec(64, 16, 0.5) and detector.precision == "bfloat16"
    args = inference.build_parser().parse_args(["--imgpath", "x", "--tile", "96", "--tile-overlap", "0.25"])
    assert inference.tile_from_args(args) == {"size": 96, "overlap": 0.25, "scale": None}
    assert inference.tile_from_args(inference.build_parser().parse_args(["--imgpath", "x"])) is None
    out = tmp_path / "tiled"
    assert inference.main(["--imgpath", str(image_folder), "--weights", json_path, "--output", str(out),
                           "--tile", "64", "--tile-scale", "1", "--no-figures"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "b.json"]
    for bad, message in ((["--tile-overlap", "1.5"], "whole number"), (["--precision", "float16"], "invalid choice")):
        with pytest.raises(SystemExit):
            inference.build_parser().parse_args(["--imgpath", "x", *bad])
        assert message in capsys.readouterr().err
    capsys.readouterr()
    assert inference.main(["--imgpath", str(image_folder), "--weights", json_path, "--tile", "100"]) == 2
    assert "multiple of 32" in capsys.readouterr().err
