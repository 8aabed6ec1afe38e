"""Inputs a user can throw at db-tf that once lost results, ate memory or crashed deep inside a library
(issue 18): colliding output names, oversized images, unreadable images in a batch, wrong argument types,
bad command-line values and TensorFlow's start-up noise."""
import json
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
from test_detector import PixelModel, white_rectangle

from db_tf import figures
from db_tf.cli import detect as inference
from db_tf.data import image_io
from db_tf.data.image_io import ImageReadError
from db_tf.detector import Detections, TextDetector


def encoded(image, ext=".png"):
    return cv2.imencode(ext, np.ascontiguousarray(image[..., ::-1]))[1].tobytes()


def png_header_only(width, height):
    """A PNG whose header claims width x height but whose pixel data is a tiny zlib stream: a file of a
    few hundred bytes that would decode to width * height * 3 bytes."""
    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) \
        + chunk(b"IEND", b"")


@pytest.fixture
def pixel_cli(monkeypatch):
    def fake(args, cfg):
        return TextDetector(model=PixelModel(), short_side=96, max_side=0, batch_size=args.batch_size)
    monkeypatch.setattr(inference, "detector_from_args", fake)


# ---------------------------------------------------------------------- 1. no result overwrites another
def test_inputs_sharing_a_stem_keep_their_own_results_and_figures(tmp_path, pixel_cli):
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "x.jpg"), white_rectangle(120, 200, 20, 30, 159, 49))   # one text
    cv2.imwrite(str(folder / "x.png"), np.zeros((1, 1, 3), np.uint8))                # none
    cv2.imwrite(str(folder / "X.bmp"), white_rectangle(96, 160, 10, 10, 89, 24))      # one; X = x on macOS
    cv2.imwrite(str(folder / "y.png"), white_rectangle(96, 160, 10, 10, 89, 24))
    out = tmp_path / "out"
    assert inference.main(["--imgpath", str(folder), "--output", str(out), "--batch-size", "3"]) == 0
    counts = {p.name: len(json.loads(p.read_text())["polygons"]) for p in out.glob("*.json")}
    assert counts == {"x.jpg.json": 1, "x.png.json": 0, "X.bmp.json": 1, "y.json": 1}
    kinds = ("poly", "bbox", "binarize_map", "threshold_map", "binary_map")
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(
        f"{stem}_{kind}.jpg" for stem in ("x.jpg", "x.png", "X.bmp", "y") for kind in kinds)


# ---------------------------------------------------------------------- 3. bounded memory
def test_decoding_refuses_a_pixel_bomb_before_allocating_it(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(30000, 30000))
    assert bomb.stat().st_size < 500
    assert image_io.header_size(bomb.read_bytes()) == (30000, 30000)
    with pytest.raises(ImageReadError, match=r"bomb\.png: image is 30000x30000 \(900,000,000 pixels\), more "
                                             r"than the limit of 200,000,000"):
        image_io.read_image(bomb)
    with pytest.raises(ImageReadError, match="bomb.png: image is 30000x30000"):
        image_io.decode_image_bounded(bomb.read_bytes(), str(bomb))   # not a JPEG: no reduced decode


def test_an_oversized_jpeg_is_decoded_reduced_and_detections_come_back_in_its_frame():
    image = white_rectangle(400, 640, 80, 120, 559, 199)
    data = encoded(image, ".jpg")
    detector = TextDetector(model=PixelModel(), short_side=96, max_side=0)
    full = detector.detect(data)
    detector.max_pixels = 400 * 640 // 4 - 1     # over the limit at 1/2, fits at 1/4 (100 x 160)
    reduced = detector.detect(data, return_maps=True)
    assert reduced.extras["image"].shape == (100, 160, 3) and reduced.extras["image_scale"] == (4.0, 4.0)
    assert reduced.image_size == full.image_size == (400, 640) and len(reduced) == len(full) == 1
    # the same network input either way, up to JPEG / resampling noise of a pixel of the 96 x 154 map
    np.testing.assert_allclose(reduced.polygons[0], full.polygons[0], atol=2 * 640 / 154)
    with pytest.raises(ImageReadError, match="more than the limit"):
        image_io.decode_image_bounded(data, "x.jpg", max_pixels=40 * 80 - 1)   # not even 1/8 fits


def test_figures_of_a_huge_image_are_drawn_at_a_bounded_size():
    polygons = [np.array([[1000, 1000], [9000, 1000], [9000, 3000], [1000, 3000]], np.float32)]
    detections = Detections(polygons, np.ones(1, np.float32), (20000, 12000))
    small_decode = np.zeros((2500, 1500, 3), np.uint8)     # e.g. a 1/8 JPEG decode of the same image
    maps = {"probability": np.zeros((2560, 1536), np.float32)}
    pictures = figures.figure_images(small_decode, detections, detections, maps)
    assert {p.shape for p in pictures.values()} == {(2560, 1536, 3)}
    bbox = pictures["bbox"]
    ys, xs = np.nonzero(bbox[..., 0] > 128)                 # the box, in figure pixels (scale 0.128)
    assert abs(xs.min() - 128) <= 3 and abs(xs.max() - 1152) <= 3
    assert abs(ys.min() - 128) <= 3 and abs(ys.max() - 384) <= 3


# ---------------------------------------------------------------------- 6, 7. the library's detect()
def test_detect_can_collect_per_image_errors_and_keep_the_good_results(tmp_path):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), white_rectangle(120, 200, 20, 30, 159, 49))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(encoded(white_rectangle(120, 200, 20, 30, 159, 49), ".jpg")[:300])
    detector = TextDetector(model=PixelModel(), short_side=96, max_side=0, batch_size=2)
    with pytest.raises(ImageReadError, match="broken.jpg"):
        detector.detect([good, broken])
    results = detector.detect([good, broken, tmp_path / "missing.png", good], errors="collect")
    assert [len(r) for r in results] == [1, 0, 0, 1]
    assert results[0].error is None and results[3].error is None
    assert "broken.jpg: cannot decode" in results[1].error and "missing.png: file not found" in results[2].error
    np.testing.assert_array_equal(results[0].polygons[0], results[3].polygons[0])
    with pytest.raises(ValueError, match="errors must be"):
        detector.detect(good, errors="ignore")


def test_detect_takes_encoded_bytes_and_rejects_other_types_clearly():
    image = white_rectangle(120, 200, 20, 30, 159, 49)
    detector = TextDetector(model=PixelModel(), short_side=96, max_side=0)
    from_array = detector.detect(image)
    for data in (encoded(image), bytearray(encoded(image)), memoryview(encoded(image))):
        from_bytes = detector.detect(data)
        np.testing.assert_array_equal(from_bytes.polygons[0], from_array.polygons[0])
    assert len(detector.detect([encoded(image), image])) == 2
    with pytest.raises(TypeError, match="got NoneType"):
        detector.detect(None)
    with pytest.raises(TypeError, match=r"image 1: expected a path, encoded image bytes or a numpy array, got int"):
        detector.detect([image, 3])
    with pytest.raises(ValueError, match="expected a uint8 image"):
        detector.detect(image.astype(np.int64))
    with pytest.raises(ImageReadError, match=r"<image 0: bytes>: cannot decode"):
        detector.detect(b"not an image")


def test_detector_settings_out_of_range_are_refused():
    for bad in ({"short_side": 0}, {"thresh": 1.5}, {"box_thresh": -0.1}, {"unclip_ratio": 0.0},
                {"max_side": -1}, {"short_side": 736.5}, {"thresh": float("nan")}, {"channel_order": "BRG"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TextDetector(model=PixelModel(), **bad)
    with pytest.raises(ValueError, match="batch_size"):
        TextDetector(model=PixelModel(), batch_size=0)


# ---------------------------------------------------------------------- 8. bad CLI values
@pytest.mark.parametrize("flags", [["--short-side", "0"], ["--short-side", "abc"], ["--thresh", "2"],
                                   ["--box-thresh", "-1"], ["--unclip", "0"], ["--batch-size", "0"],
                                   ["--format", "xml"]])
def test_bad_inference_values_give_one_error_line_and_exit_2(flags, capsys):
    with pytest.raises(SystemExit) as stop:
        inference.main(["--imgpath", "figures/demo.jpg", *flags])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1 and "Traceback" not in err


@pytest.mark.parametrize("script, argv", [
    ("evaluate", ["--images", "x", "--gt", "y", "--short-side", "-3"]),
    ("evaluate", ["--pred", "x", "--gt", "y", "--bootstrap", "-1"]),
    ("evaluate", ["--images", "x", "--gt", "y", "--box-thresh", "nan"]),
    ("export", ["--version", "0"]), ("export", ["--max-side", "-1"]), ("export", ["--opset", "x"]),
    ("train", ["--max-steps", "0"]), ("train", ["--time-limit", "-5"]),
])
def test_bad_values_of_every_cli_give_one_error_line_and_exit_2(script, argv, capsys):
    import importlib

    module = importlib.import_module(f"db_tf.cli.{script}")
    with pytest.raises(SystemExit) as stop:
        module.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1 and "Traceback" not in err


def test_a_bad_setting_through_set_is_an_error_line_too(capsys, repo_root):
    code = inference.main(["--imgpath", str(repo_root / "figures" / "demo.jpg"), "--output", "/nonexistent/x",
                           "--set", "POSTPROCESS.SHORT_SIDE=0", "--weights", "ppocrv4_mobile"])
    assert code == 2
    assert "error: short_side must be a positive integer, got 0" in capsys.readouterr().err


# ---------------------------------------------------------------------- 9. a quiet console
@pytest.mark.slow
def test_the_cli_prints_no_tensorflow_startup_lines_unless_verbose(tmp_path, repo_root):
    def run(*extra):
        return subprocess.run([sys.executable, "inference.py", "--imgpath", "figures/demo.jpg", "--output",
                               str(tmp_path), "--no-figures", *extra], cwd=repo_root, capture_output=True,
                              text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    quiet = run()
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and "1 of 1 images processed" in quiet.stdout
    verbose = run("--verbose")
    assert verbose.returncode == 0 and "oneDNN" in verbose.stderr


def test_the_startup_filter_keeps_warnings(capfd):
    from db_tf.cli import common

    with common._stderr_filtered(common.STARTUP_NOISE):
        import os
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                    b"I0000 00:00:1796583798.817137    7182 port.cc:153] oneDNN custom operations are on.\n"
                    b"W0000 00:00:1796583798.817137    7182 foo.cc:1] a real warning\n")
    assert capfd.readouterr().err == "W0000 00:00:1796583798.817137    7182 foo.cc:1] a real warning\n"
