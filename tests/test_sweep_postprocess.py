"""db_tf.tools.sweep_postprocess: box-threshold filtering of one post-processing pass gives the same scores as
scoring each threshold's detections directly (hand-made boxes, no network)."""
import numpy as np

from db_tf.detector import Detections
from db_tf.tools.sweep_postprocess import score_setting


def square(x, y, side=10.0):
    return np.array([[x, y], [x + side, y], [x + side, y + side], [x, y + side]], np.float32)


class FixedDetector:
    """postprocess() returns the same scored boxes whatever the settings, and records the box_thresh asked for."""

    def __init__(self, polygons, scores):
        self.polygons, self.scores, self.asked = polygons, np.asarray(scores, np.float32), []
        self.settings = []

    def postprocess(self, maps, image_size, thresh, unclip_ratio, box_thresh, **settings):
        self.asked.append(box_thresh)
        self.settings.append(settings)
        return Detections(list(self.polygons), self.scores, tuple(image_size))


def test_box_threshold_filtering_matches_hand_counts():
    gt = ([square(0, 0), square(50, 0)], np.array([False, False]))
    # a hit (score 0.9), a hit (0.5), a false positive (0.7)
    detector = FixedDetector([square(0, 0), square(50, 0), square(100, 100)], [0.9, 0.5, 0.7])
    results = dict(score_setting(detector, [None], [gt], [(200, 200)], 0.3, 1.5, [0.4, 0.6, 0.8, 0.95]))
    assert detector.asked == [0.4]  # post-processed once, at the lowest box threshold
    # by hand: 0.4 keeps all three -> P 2/3, R 1; 0.6 keeps 0.9 and 0.7 -> P 1/2, R 1/2;
    # 0.8 keeps 0.9 -> P 1, R 1/2; 0.95 keeps none -> P 0, R 0
    expected = {0.4: (2 / 3, 1.0), 0.6: (0.5, 0.5), 0.8: (1.0, 0.5), 0.95: (0.0, 0.0)}
    for box_thresh, (precision, recall) in expected.items():
        assert np.isclose(results[box_thresh]["precision"], precision)
        assert np.isclose(results[box_thresh]["recall"], recall)


def test_other_settings_reach_the_post_processing():
    gt = ([square(0, 0)], np.array([False]))
    detector = FixedDetector([square(0, 0)], [0.9])
    score_setting(detector, [None, None], [gt, gt], [(50, 50)] * 2, 0.3, 1.5, [0.5], score_mode="slow", dilate=True)
    assert detector.settings == [{"score_mode": "slow", "dilate": True}] * 2
