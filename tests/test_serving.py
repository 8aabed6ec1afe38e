"""db_tf.serving without a server: REST request building, response parsing (row and columnar formats),
cropping of padded maps, scaling of detections to the original image, error reporting.

The round trips through HTTP / gRPC against an exported model are in tests/test_export_saved_model.py."""
import base64
import json
import sys

import numpy as np
import pytest

from db_tf import postprocess as post
from db_tf.data.image_io import ImageReadError
from db_tf.serving import (
    ServedMaps,
    ServingClient,
    ServingError,
    detections,
    parse_rest_response,
    rest_request,
    rest_url,
)


def test_rest_request_carries_the_files_unchanged(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 pretend jpeg \x00\x01")
    body = json.loads(json.dumps(rest_request([path, b"\x89PNG raw bytes"])))  # JSON-serialisable
    assert body["signature_name"] == "serving_default"
    decoded = [base64.b64decode(instance["image_bytes"]["b64"]) for instance in body["instances"]]
    assert decoded == [path.read_bytes(), b"\x89PNG raw bytes"]


def test_rest_request_names_missing_and_empty_files(tmp_path):
    with pytest.raises(ImageReadError, match=r"nope\.png: file not found"):
        rest_request([tmp_path / "nope.png"])
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.jpg: file is empty"):
        rest_request([tmp_path / "empty.jpg"])
    with pytest.raises(ValueError, match="no images"):
        rest_request([])


def test_rest_url():
    assert rest_url() == "http://localhost:8501/v1/models/dbnet:predict"
    assert rest_url("https://ocr.example:443/", "det", 7) == "https://ocr.example:443/v1/models/det/versions/7:predict"


def _outputs():
    """Two images in one padded (2, 96, 128, 1) batch, as the serving_default signature returns them."""
    probability = np.random.default_rng(0).uniform(0, 1, (2, 96, 128, 1)).astype(np.float32)
    return {"probability": probability, "original_size": np.array([[128, 192], [300, 90]], np.int32),
            "resized_size": np.array([[64, 96], [96, 32]], np.int32)}


def test_row_and_columnar_responses_give_the_cropped_maps():
    outputs = _outputs()
    row = {"predictions": [{k: v[i].tolist() for k, v in outputs.items()} for i in range(2)]}
    columnar = {"outputs": {k: v.tolist() for k, v in outputs.items()}}
    for body in (json.dumps(row), columnar):
        maps = parse_rest_response(body)
        assert [m.original_size for m in maps] == [(128, 192), (300, 90)]
        assert [m.resized_size for m in maps] == [(64, 96), (96, 32)]
        np.testing.assert_array_equal(maps[0].probability, outputs["probability"][0, :64, :96, 0])
        np.testing.assert_array_equal(maps[1].probability, outputs["probability"][1, :96, :32, 0])


def test_bad_responses_raise_serving_errors():
    with pytest.raises(ServingError, match="TF Serving error: Invalid PNG data"):
        parse_rest_response({"error": "Invalid PNG data, size 12"})
    with pytest.raises(ServingError, match="no named outputs"):
        parse_rest_response({"predictions": [[0.1, 0.2]]})
    outputs = {k: v.tolist() for k, v in _outputs().items() if k != "resized_size"}
    with pytest.raises(ServingError, match=r"lacks outputs \['resized_size'\]"):
        parse_rest_response({"outputs": outputs})
    with pytest.raises(ServingError, match="unexpected TF Serving response"):
        parse_rest_response({"result": []})
    with pytest.raises(ServingError, match="inconsistent outputs"):
        parse_rest_response({"predictions": []})


def test_detections_are_scaled_to_the_original_image_and_ignore_the_padding():
    """A 40 x 16 text block at x 30..69, y 20..35 of a 64 x 96 network input for a 128 x 192 image
    (scale 2), and a bright blob in the batch padding that must not be detected.

    Hand-worked expectation: the block's contour runs through pixel centres, a 39 x 15 rectangle:
    area 585, perimeter 108, unclip distance 585 * 1.5 / 108 = 8.125, so the box is x 21.9..77.1,
    y 11.9..43.1 on the map, i.e. x 43.8..154.3, y 23.8..86.3 in the original image.
    """
    probability = np.full((96, 128), 0.05, np.float32)
    probability[20:36, 30:70] = 0.9
    probability[70:90, 10:100] = 0.95  # below resized height 64: padding
    maps = parse_rest_response({"outputs": {"probability": probability[None, :, :, None].tolist(),
                                            "original_size": [[128, 192]], "resized_size": [[64, 96]]}})
    (result,) = [detections(m) for m in maps]
    assert len(result) == 1 and result.image_size == (128, 192)
    np.testing.assert_allclose(result.polygons[0], [[44, 24], [154, 24], [154, 86], [44, 86]], atol=1)
    assert result.scores[0] == pytest.approx(0.9, abs=0.05)
    # polygon mode uses the polygon unclip ratio (2.0), as TextDetector does
    polygons, _ = post.postprocess(probability[:64, :96], (128, 192), polygon=True, unclip_ratio=2.0)
    polygon_result = detections(maps[0], polygon=True)
    assert [p.tolist() for p in polygon_result.polygons] == [p.tolist() for p in polygons]


def test_client_rejects_bad_settings_and_reports_a_missing_grpc_package(monkeypatch):
    with pytest.raises(ValueError, match="protocol"):
        ServingClient(protocol="http2")
    with pytest.raises(TypeError, match="unknown post-processing settings"):
        ServingClient(threshold=0.3)
    with pytest.raises(TypeError, match="unknown post-processing settings"):
        ServingClient().detect([b"\x89PNG"], boxthresh=0.5)   # refused before any request is sent
    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)
    with pytest.raises(ImportError, match="pip install --no-deps tensorflow-serving-api"):
        ServingClient("localhost:8500", protocol="grpc").predict([b"\x89PNG"])


def test_served_maps_with_an_empty_valid_region_are_rejected_by_postprocess():
    maps = ServedMaps(np.zeros((0, 0), np.float32), (10, 10), (0, 0))
    with pytest.raises(ValueError, match="empty probability map"):
        detections(maps)


def test_a_served_threshold_map_is_cropped_and_used_for_split_by_threshold():
    """Two words joined by a weaker bridge in P; the threshold map is high on the bridge only."""
    probability = np.full((1, 64, 128, 1), 0.05, np.float32)
    probability[0, 20:36, 10:50] = probability[0, 20:36, 60:110] = 0.9
    probability[0, 22:34, 50:60] = 0.5
    threshold = np.full_like(probability, 0.3)
    threshold[0, :, 50:60] = 0.7
    threshold[0, 40:, :] = 9.0   # rows beyond resized_size: must be cropped away like the probability
    outputs = {"probability": probability, "threshold": threshold, "original_size": np.array([[40, 128]]),
               "resized_size": np.array([[40, 128]])}
    row = {"predictions": [{k: v[0].tolist() for k, v in outputs.items()}]}
    for body in (row, {"outputs": {k: v.tolist() for k, v in outputs.items()}}):
        (maps,) = parse_rest_response(body)
        np.testing.assert_array_equal(maps.threshold, threshold[0, :40, :, 0])
        assert len(detections(maps, box_thresh=0.5)) == 1
        split = detections(maps, box_thresh=0.5, split_by_threshold=True)
        expected, _ = post.postprocess(probability[0, :40, :, 0], box_thresh=0.5, threshold_map=threshold[0, :40, :, 0])
        assert len(split) == 2 and [p.tolist() for p in split.polygons] == [p.tolist() for p in expected]
    del outputs["threshold"]
    (maps,) = parse_rest_response({"outputs": {k: v.tolist() for k, v in outputs.items()}})
    assert maps.threshold is None
    with pytest.raises(ValueError, match="split_by_threshold needs the threshold map"):
        detections(maps, split_by_threshold=True)
