"""The web page of ``vidfake serve`` in a real browser: Debian's headless Chromium,
driven through chromedriver. Skipped (with the reason) where the browser is not
installed; ``.ci/run`` installs it. Nothing is installed or downloaded at run time."""
from __future__ import annotations

import shutil

import pytest

from tests.serve.helpers import Server
from vidfake.testing import media

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
TOKEN = "page-token"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                       reason="headless Chromium not installed (apt-get install chromium chromium-driver)"),
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1200,1600", "--no-first-run", "--disable-extensions",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    # an explicit driver path: selenium never tries to download one
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_upload_on_the_page_shows_verdict_timeline_faces_and_warnings(tmp_path, browser, checkpoint):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    clip = media.moving_face_video(tmp_path / "interview clip.mp4", n_frames=40)
    with Server(checkpoint, tmp_path / "data", token=TOKEN, env={"VIDFAKE_TOKEN": TOKEN}) as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 120, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException])
        # the API answers 401 without the token: the page asks for it
        wait.until(lambda d: d.find_element(By.ID, "auth").is_displayed())
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.CSS_SELECTOR, "#auth-form button").click()
        wait.until(lambda d: "model tiny" in d.find_element(By.ID, "model-info").text)
        assert browser.find_element(By.ID, "untrained").is_displayed()

        browser.find_element(By.ID, "file").send_keys(str(clip.path))
        wait.until(lambda d: d.find_element(By.ID, "result").is_displayed())

        assert browser.find_element(By.ID, "result-name").text == "interview clip.mp4"
        assert browser.find_element(By.ID, "verdict").get_attribute("data-status") == "ok"
        assert browser.find_element(By.ID, "verdict-label").text in ("FAKE", "REAL")
        assert "fake probability" in browser.find_element(By.ID, "verdict-score").text

        job_id = browser.execute_script("return location.hash").split("=", 1)[1]
        with server.client() as c:
            job = c.get(f"/v1/jobs/{job_id}").json()
        verdict = job["verdict"]
        scored = [p for p in verdict["timeline"] if p["score"] is not None]
        timeline = browser.find_element(By.ID, "timeline")
        assert int(timeline.get_attribute("data-points")) == len(scored) > 0
        dots = timeline.find_elements(By.CSS_SELECTOR, "circle.point")
        assert [round(float(d.get_attribute("data-score")), 6) for d in dots] == [round(p["score"], 6) for p in scored]
        # one line per run of scored frames within a segment: none drawn across the gap between clips
        runs, length, previous = 0, 0, None
        for point in verdict["timeline"] + [{"score": None, "segment": None}]:
            if point["score"] is None or point["segment"] != previous:
                runs, length = runs + (length > 1), 0
            if point["score"] is not None:
                length += 1
            previous = point["segment"]
        assert len({p["segment"] for p in verdict["timeline"]}) == 2  # the tiny model's clips:2x8 plan
        assert len(timeline.find_elements(By.CSS_SELECTOR, "polyline.series")) == runs > 0
        assert timeline.find_elements(By.CSS_SELECTOR, "line.threshold")

        cards = browser.find_elements(By.CSS_SELECTOR, "#faces .face")
        assert len(cards) == len(verdict["tracks"])
        wait.until(lambda d: all(d.execute_script("return arguments[0].naturalWidth", img) > 0
                                 for img in d.find_elements(By.CSS_SELECTOR, "#faces img")))
        assert all("%" in card.find_element(By.CSS_SELECTOR, ".score").text for card in cards)

        # where: each track's most suspicious frames with the heat map over the face, under the timeline
        figures = browser.find_elements(By.CSS_SELECTOR, "#heatmaps figure.heatmap")
        assert len(figures) == 3 * len(verdict["tracks"]) == len(job["heatmaps"])  # the server's default: 3
        assert [(int(f.get_attribute("data-track")), int(f.get_attribute("data-frame"))) for f in figures] == \
            [(h["track_id"], h["frame"]) for h in job["heatmaps"]]
        wait.until(lambda d: all(d.execute_script("return arguments[0].naturalWidth", img) > 0
                                 for img in d.find_elements(By.CSS_SELECTOR, "#heatmaps img")))
        assert "Grad-CAM" in browser.find_element(By.ID, "heatmaps-note").text  # the tiny model has no mask head
        assert all("%" in f.find_element(By.CSS_SELECTOR, ".score").text for f in figures)
        below = browser.find_element(By.ID, "heatmaps").location["y"]
        assert timeline.location["y"] < below < browser.find_element(By.ID, "faces").location["y"]

        assert "sync confidence" in browser.find_element(By.ID, "lipsync").text
        assert "untrained" in browser.find_element(By.ID, "warnings").text
        rows = browser.find_elements(By.CSS_SELECTOR, "#jobs tr")
        assert any("interview clip.mp4" in row.text for row in rows)
        assert not browser.find_element(By.ID, "error").is_displayed()

        # a file that is not a video gets the server's explanation on the page
        bad = media.not_a_video(tmp_path / "notes.mp4")
        browser.find_element(By.ID, "file").send_keys(str(bad))
        wait.until(lambda d: d.find_element(By.ID, "error").is_displayed())
        assert "HTTP 415" in browser.find_element(By.ID, "error").text
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "415" not in e["message"]
                  and "401" not in e["message"]]
        assert not severe, severe


def test_try_the_example_is_offered_until_something_was_scored(tmp_path, browser, checkpoint):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from vidfake.examples import EXAMPLE_FILE

    with Server(checkpoint, tmp_path / "data") as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 120, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException])
        wait.until(lambda d: d.find_element(By.ID, "example").is_displayed())  # no job yet
        browser.find_element(By.ID, "try-example").click()
        wait.until(lambda d: d.find_element(By.ID, "result").is_displayed())

        assert browser.find_element(By.ID, "result-name").text == EXAMPLE_FILE
        assert browser.find_element(By.ID, "verdict").get_attribute("data-status") == "ok"
        assert "fake probability" in browser.find_element(By.ID, "verdict-score").text
        assert "sync confidence" in browser.find_element(By.ID, "lipsync").text
        assert len(browser.find_elements(By.CSS_SELECTOR, "#faces .face")) == 1
        wait.until(lambda d: any(EXAMPLE_FILE in row.text for row in d.find_elements(By.CSS_SELECTOR, "#jobs tr")))
        assert not browser.find_element(By.ID, "example").is_displayed()  # something has been scored now

        browser.refresh()  # a later visit lists the job and no longer offers the example
        wait.until(lambda d: any(EXAMPLE_FILE in row.text for row in d.find_elements(By.CSS_SELECTOR, "#jobs tr")))
        assert not browser.find_element(By.ID, "example").is_displayed()
        assert not browser.find_element(By.ID, "error").is_displayed()
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe


def test_the_page_says_what_the_mouth_motion_head_found(tmp_path, browser):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.tiny_models import write_tiny_checkpoint

    mouth = write_tiny_checkpoint(tmp_path / "mouth.safetensors", mouth_motion=True)
    with Server(mouth, tmp_path / "data") as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 120, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException])
        wait.until(lambda d: d.find_element(By.ID, "example").is_displayed())
        browser.find_element(By.ID, "try-example").click()  # a talking face with its sound
        wait.until(lambda d: d.find_element(By.ID, "result").is_displayed())
        with server.client() as c:
            job = c.get("/v1/jobs").json()["jobs"][0]
            found = c.get(f"/v1/jobs/{job['id']}").json()["verdict"]["tracks"][0]["mouth_motion"]
            assert c.get("/v1/model").json()["mouth_motion_head"] is True
        card = browser.find_element(By.CSS_SELECTOR, "#faces .face").text
        assert found["finding"] in card and "re-generated from 50.0%" in card  # the threshold: logit 0
        lipsync = browser.find_element(By.ID, "lipsync").text
        assert f"Mouth motion: {found['finding']} (" in lipsync and lipsync.endswith("on track 0.")


def test_api_docs_render_offline_and_use_the_pages_token(tmp_path, browser, checkpoint):
    """/docs draws every endpoint from files this server serves; with a token set, the
    schema is fetched with the token the main page stored (no CDN, no second login)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with Server(checkpoint, tmp_path / "data", token=TOKEN, env={"VIDFAKE_TOKEN": TOKEN}).start(wait_ready=False) as server:
        wait = WebDriverWait(browser, 60, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException])
        browser.get(server.url + "/docs")
        browser.execute_script("sessionStorage.removeItem('vidfake-token')")
        browser.refresh()
        wait.until(lambda d: d.find_element(By.ID, "docs-note").is_displayed())
        assert "needs an access token" in browser.find_element(By.ID, "docs-note").text

        browser.execute_script("sessionStorage.setItem('vidfake-token', arguments[0])", TOKEN)
        browser.refresh()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"))
        paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/model"} <= paths
        loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert loaded and all(url.startswith(server.url) for url in loaded), loaded
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "401" not in e["message"]]
        assert not severe, severe
