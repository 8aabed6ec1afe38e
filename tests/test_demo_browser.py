"""`db-tf demo` in a real browser: headless Chromium (Debian's chromium + chromium-driver) through Selenium.

The page uploads figures/demo.jpg through its file input; the boxes it draws (SVG polygons) must equal
TextDetector.detect on the same file, and moving the box_thresh slider with the keyboard (real input
events) must show the count TextDetector predicts for the slider's value, without a new forward pass.
DB_TF_DEMO_SCREENSHOT=figures/demo_page.png also writes the screenshot README shows.
"""
import io
import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PRESET = "ppocrv4_mobile"
WAIT_SECONDS = 120   # the first forward pass loads the preset (several seconds on a busy 2-core machine)

pytestmark = pytest.mark.slow


def browser(tmp_path):
    """A headless Chromium that fetches nothing by itself; skips with the reason when it cannot start."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                                                  "(pip install -r requirements-dev.txt)")
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).is_file():
            pytest.skip(f"{path} is missing: install the browser with `apt-get install chromium chromium-driver` "
                        f"(.ci/run does; Debian package {package})")
    os.environ["SE_OFFLINE"] = "true"   # Selenium Manager must never download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path / "downloads"),
                                              "download.prompt_for_download": False})
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1500,860", "--hide-scrollbars",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    try:
        return webdriver.Chrome(options=options, service=service)
    except Exception as exc:   # e.g. a driver that does not match the browser
        pytest.skip(f"headless Chromium does not start here: {type(exc).__name__}: {str(exc)[:300]}")


def wait_for(condition, what, seconds=WAIT_SECONDS):
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.1)


def drawn(driver):
    """(settings the page says the drawing was made with, [polygon as [[x, y], ...]]) from the SVG overlay."""
    shapes = driver.execute_script("""
        const overlay = document.getElementById('overlay');
        return [overlay.dataset.settings || null,
                [...overlay.querySelectorAll('polygon.det')]
                    .map(p => [p.getAttribute('points'), p.getAttribute('class')])];
    """)
    settings = json.loads(shapes[0]) if shapes[0] else None
    polygons = [[[int(v) for v in pair.split(",")] for pair in points.split()] for points, _ in shapes[1]]
    return settings, polygons, [kind for _, kind in shapes[1]]


def as_lists(detections):
    return [p.astype(int).tolist() for p in detections.polygons]


@pytest.fixture
def demo_server():
    from db_tf.cli.demo import preset_choices
    from db_tf.demo import DemoApp, serve_in_thread

    server = serve_in_thread(DemoApp(preset_choices([]), default=PRESET))
    yield server
    server.shutdown()
    server.server_close()


def test_page_draws_the_library_detections_and_the_slider_recounts(demo_server, tmp_path, repo_root):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from db_tf import list_presets

    driver = browser(tmp_path)
    try:
        image_path = repo_root / "figures" / "demo.jpg"
        detector = demo_server.app.detector(PRESET)        # the server's detector, called as the library
        # the page's forward pass also computes the threshold branch (for its maps), as detect(return_maps=True)
        # does; the probability-only graph of detect() may round differently on other CPUs: within 1 pixel
        expected = detector.detect(str(image_path), return_maps=True)
        plain = detector.detect(str(image_path))
        assert len(expected) == len(plain) > 0
        assert max(np.abs(a - b).max() for a, b in zip(expected.polygons, plain.polygons)) <= 1

        driver.get(demo_server.url)
        options = wait_for(lambda: [o.get_attribute("value")
                                    for o in driver.find_elements(By.CSS_SELECTOR, "#preset option")], "presets")
        assert sorted(options) == list_presets()
        assert driver.find_element(By.ID, "preset").get_attribute("value") == PRESET

        driver.find_element(By.ID, "files").send_keys(str(image_path))
        settings, polygons, kinds = wait_for(lambda: drawn(driver)[0] and drawn(driver), "the first detections")
        assert polygons == as_lists(expected)
        assert set(kinds) == {"det box"} and settings["box_thresh"] == detector.settings["box_thresh"]
        assert driver.find_element(By.ID, "count").text == str(len(expected))
        assert driver.find_element(By.ID, "forward-ms").text.endswith(" ms")
        map_names = {f.get_attribute("data-map") for f in driver.find_elements(By.CSS_SELECTOR, "#maps figure")}
        assert map_names == {"probability", "threshold", "binary", "bitmap"}
        wait_for(lambda: driver.execute_script(
            "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"), "the image and maps")
        screenshot = tmp_path / "demo_page.png"
        driver.save_screenshot(str(screenshot))
        check_screenshot(screenshot)
        if os.environ.get("DB_TF_DEMO_SCREENSHOT"):
            shutil.copyfile(screenshot, os.environ["DB_TF_DEMO_SCREENSHOT"])
        passes = demo_server.app.forward_passes

        # box_thresh: press the right arrow until TextDetector predicts another count for the slider's value
        slider = driver.find_element(By.ID, "box-thresh")
        maps = expected.extras["maps"]
        for _ in range(100):
            slider.send_keys(Keys.ARROW_RIGHT)
            value = float(slider.get_attribute("value"))
            if len(detector.postprocess(maps, expected.image_size, box_thresh=value)) != len(expected):
                break
        predicted = detector.detect(str(image_path), box_thresh=value, return_maps=True)
        assert len(predicted) != len(expected)
        settings, polygons, _ = wait_for(lambda: drawn(driver)[0]["box_thresh"] == value and drawn(driver),
                                         f"the detections at box_thresh {value}")
        assert driver.find_element(By.ID, "count").text == str(len(predicted))
        assert polygons == as_lists(predicted)

        # the polygon switch, also on the cached maps
        driver.find_element(By.CSS_SELECTOR, "input[name=mode][value=polygon]").click()
        settings, polygons, kinds = wait_for(lambda: drawn(driver)[0]["polygon"] and drawn(driver), "polygons")
        in_polygons = detector.detect(str(image_path), box_thresh=value, polygon=True, return_maps=True)
        assert polygons == as_lists(in_polygons) and set(kinds) <= {"det poly"}
        assert driver.find_element(By.ID, "count").text == str(len(in_polygons))
        assert demo_server.app.forward_passes == passes     # sliders and switch: post-processing only

        # a file that is not an image: a message on the page, the page and server keep working
        junk = tmp_path / "notes.jpg"
        junk.write_text("not a picture")
        driver.find_element(By.ID, "files").send_keys(str(junk))
        message = wait_for(lambda: driver.find_element(By.ID, "message").text, "the error message")
        assert message.startswith("notes.jpg: not a usable image")
        assert driver.find_element(By.ID, "count").text == str(len(in_polygons))
        assert json.loads(driver.find_element(By.ID, "overlay").get_attribute("data-settings")) == settings

        # a second image (a crop, as PNG): detected with the tuned settings, then both downloaded
        crop = tmp_path / "crop.png"
        cv2.imwrite(str(crop), cv2.imread(str(image_path))[300:640, 700:1280])
        driver.find_element(By.ID, "files").send_keys(str(crop))
        wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#image-list li")) == 2
                 and "crop.png" in driver.find_element(By.ID, "photo-caption").text, "the second image")
        tuned = {"box_thresh": value, "polygon": True}
        crop_expected = detector.detect(str(crop), return_maps=True, **tuned)
        assert drawn(driver)[1] == as_lists(crop_expected) and len(crop_expected) > 0
        driver.find_element(By.ID, "download-icdar").click()
        archive = wait_for(lambda: downloaded(tmp_path / "downloads" / "submission.zip"), "submission.zip")
        with zipfile.ZipFile(io.BytesIO(archive)) as files:
            assert sorted(files.namelist()) == ["res_crop.txt", "res_demo.txt"]
            assert files.read("res_demo.txt").decode() == in_polygons.to_icdar()
            assert files.read("res_crop.txt").decode() == crop_expected.to_icdar()
        driver.find_element(By.ID, "download-json").click()
        saved = json.loads(wait_for(lambda: downloaded(tmp_path / "downloads" / "detections.json"), "JSON"))
        assert saved == {"demo": {"name": "demo.jpg", **in_polygons.to_json()},
                         "crop": {"name": "crop.png", **crop_expected.to_json()}}
    finally:
        driver.quit()


def downloaded(path):
    """The file's bytes once Chromium has finished writing it (it writes <name>.crdownload first)."""
    if path.is_file() and not path.with_name(path.name + ".crdownload").exists():
        return path.read_bytes()
    return None


def check_screenshot(path):
    """A real picture of the page: PNG, window-sized, and not blank (the photo and maps give contrast)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    picture = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape[1] >= 1000 and picture.shape[0] >= 600
    assert picture.std() > 20
