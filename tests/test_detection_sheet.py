"""db_tf.tools.detection_sheet: GT lookup and the drawing of matched / unmatched detections."""
import numpy as np
import pytest

from db_tf.tools.detection_sheet import CARE, DETECTION, IGNORED, draw_tile, gt_path


def square(x, y, side):
    return np.array([[x, y], [x + side, y], [x + side, y + side], [x, y + side]], np.float32)


def test_gt_path_prefers_icdar_names_and_says_where_it_looked(tmp_path):
    (tmp_path / "gt_img_7.txt").write_text("")
    (tmp_path / "img_8.txt").write_text("")
    assert gt_path("x/img_7.jpg", tmp_path).name == "gt_img_7.txt"
    assert gt_path("img_8.png", tmp_path).name == "img_8.txt"
    with pytest.raises(FileNotFoundError, match="gt_img_9.txt"):
        gt_path("img_9.jpg", tmp_path)


def test_tile_label_counts_and_line_widths():
    image = np.zeros((200, 400, 3), np.uint8)
    gt = ([square(10, 10, 50), square(200, 10, 50), square(10, 120, 50)], np.array([False, False, True]))
    hit, miss = square(12, 12, 48), square(300, 120, 60)    # IoU 0.92 with the first care text; nothing
    tile, label = draw_tile(image, "img.jpg", [hit, miss], gt)
    assert label == "img.jpg  P 0.50 R 0.50"
    ignored_region = tile[115:175, 5:65].astype(int)   # anti-aliased 1-pixel grey outline
    assert ((ignored_region[..., 0] == ignored_region[..., 2]) & (ignored_region[..., 0] > 60)).any()
    assert IGNORED[0] == IGNORED[2] and (tile == CARE).all(axis=2).any()
    green = (tile[..., 0] == 0) & (tile[..., 2] == 0) & (tile[..., 1] > 0)   # incl. anti-aliased pixels
    assert DETECTION[0] == DETECTION[2] == 0
    # the matched detection is drawn with a thicker line than the false positive
    assert green[12:60, 8:17].sum() > green[120:181, 296:305].sum() > 0
    plain, label = draw_tile(image, "img.jpg", [hit], None)
    assert label == "img.jpg" and (plain == DETECTION).all(axis=2).any()
