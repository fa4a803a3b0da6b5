"""`nas dashboard` in a real browser: headless Chromium shows the trials and what they recorded.

The dashboard is started the way a user starts it (`nas dashboard` in its own process) on a
study shaped like a finished search, and Debian's Chromium, driven by selenium, reads the study
page and a trial's page. Screenshots land in tests/artifacts/ (gitignored) for people to look at.
Under CI (CI=true) a missing browser fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from results_studies import MadeStudy, make_search_study

from nas.artifacts import attach_pareto_artifacts
from nas.cli import main
from nas.front import pareto_rows

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).parent / "artifacts"
STARTUP_S = 90
RENDER_S = 60


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        reason = f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        if _under_ci():
            pytest.fail(f"the browser test must run under CI: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="nas-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1600,1100",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> MadeStudy:
    made = make_search_study(tmp_path_factory.mktemp("dashboard") / "nas.db", n_sampled=2)
    study = optuna.load_study(study_name=made.name, storage=made.url)
    # One Pareto trial's model and record, as the search attaches them when it ends (the
    # fastest one, so that exporting it stays quick).
    attach_pareto_artifacts(study, made.url, pareto_rows(study)[:1])
    return made


@pytest.fixture(scope="module")
def dashboard(made: MadeStudy, tmp_path_factory) -> Iterator[str]:
    port = _free_port()
    logs = tmp_path_factory.mktemp("dashboard-logs")
    with open(logs / "out", "w") as out, open(logs / "err", "w") as err:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nas.cli",
                "dashboard",
                "--storage",
                made.url,
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=err,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_S
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"nas dashboard exited with {server.returncode}: "
                    f"{(logs / 'err').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{base}/api/studies", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"nas dashboard did not answer within {STARTUP_S} s")
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_dashboard_shows_trials_user_attributes_and_artifacts(
    made: MadeStudy, dashboard: str, browser
) -> None:
    study = optuna.load_study(study_name=made.name, storage=made.url)
    study_id = study._study_id

    # The study page: every trial counted, the front, and the attached Pareto files.
    front = pareto_rows(study)
    browser.get(f"{dashboard}/dashboard/studies/{study_id}")
    text = _wait_for_text(
        browser,
        [
            made.name,
            "Best Trials",
            "Study Artifacts",
            f"trial-{front[0].number}.onnx",
            f"trial-{front[0].number}.arch.json",
        ],
    )
    for row in front:
        assert f"Trial {row.number}" in text
    for _ in range(2):  # a taller window reflows the page; measure again once
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1600, min(max(height + 150, 1100), 4000))  # artifacts included
    time.sleep(1)  # let plotly redraw at the new size
    shots = [_screenshot(browser, "dashboard-study.png")]
    browser.set_window_size(1600, 1100)

    # A trial's page: the zoo network's arch string, MFLOPs and latency as user attributes.
    trial = study.trials[made.numbers["zoo"]]
    attrs = trial.user_attrs
    browser.get(f"{dashboard}/dashboard/studies/{study_id}/trials?numbers={trial.number}")
    text = _wait_for_text(
        browser,
        [
            f"Trial {trial.number} (trial_id=",
            "User Attributes",
            f"arch {attrs['arch']}",
            f"mflops {attrs['mflops']}",
            f"latency_ms {attrs['latency_ms']}",
            f"zoo {attrs['zoo']}",
        ],
    )
    assert all(f"Trial {number}" in text for number in range(len(study.trials)))
    shots.append(_screenshot(browser, "dashboard-trial.png"))
    # The attributes box scrolls: a second picture with latency_ms and mflops at its top
    # (optuna-dashboard 0.21 shows each user attribute as a "<p>key value</p>" line).
    browser.execute_script(_SCROLL_BOX_TO, "latency_ms")
    shots.append(_screenshot(browser, "dashboard-trial-costs.png"))
    print("screenshots:", *shots)


def test_missing_database_is_exit_2_and_not_created(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["dashboard", "--storage", str(tmp_path / "none.db")])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.startswith("nas: error: no study database at")
    assert not (tmp_path / "none.db").exists()


def test_port_in_use_is_exit_2(made: MadeStudy, capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SystemExit) as exited:
            main(["dashboard", "--storage", made.url, "--port", str(taken.getsockname()[1])])
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and "already in use: pass --port" in err
    assert out == "" and err.count("\n") == 1  # the refusal alone, no banner before it


def _wait_for_text(browser, needles: list[str]) -> str:
    """The page's text once the React app has rendered all of `needles`."""
    deadline = time.monotonic() + RENDER_S
    text = ""
    while time.monotonic() < deadline:
        text = browser.execute_script("return document.body.innerText") or ""
        if all(needle in text for needle in needles):
            return text
        time.sleep(0.5)
    missing = [needle for needle in needles if needle not in text]
    pytest.fail(f"the dashboard never showed {missing}; it showed: {text[:1500]!r}")


def _screenshot(browser, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    assert browser.save_screenshot(str(path)), f"no screenshot at {path}"
    return path


_SCROLL_BOX_TO = """
const key = [...document.querySelectorAll('p')].find(
    e => e.textContent.startsWith(arguments[0] + ' '));
let box = key.parentElement;
while (box && !(box.scrollHeight > box.clientHeight
                && getComputedStyle(box).overflowY.match(/auto|scroll/))) {
    box = box.parentElement;
}
if (box) { box.scrollTop = key.getBoundingClientRect().top - box.getBoundingClientRect().top
                           + box.scrollTop; box.scrollLeft = 0; }
window.scrollTo(0, 0);
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
