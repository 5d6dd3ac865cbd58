"""The report opened in headless Chromium (Debian's `chromium`, installed by tests/setup/chromium.sh):
no console errors, the tables, images and escaped answers are in the rendered DOM; a screenshot
is saved as a test artifact (``$ANTS_TEST_ARTIFACTS``, default ``test-artifacts/``: report.png)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from _report_fixtures import shared_run

from ants.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (bash tests/setup/chromium.sh)")
ARTIFACTS = Path(os.environ.get("ANTS_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           "--enable-logging=stderr", "--v=0", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def console_errors(stderr: str) -> list[str]:
    """Console messages Chromium logs (``CONSOLE`` lines) at error level, and failed loads."""
    out = []
    for line in stderr.splitlines():
        if "CONSOLE" in line and ("ERROR" in line or "Uncaught" in line):
            out.append(line)
        elif "Failed to load resource" in line or "net::ERR_" in line:
            out.append(line)
    return out


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    run = shared_run(tmp_path_factory)
    out = tmp_path_factory.mktemp("browser") / "index.html"
    build_report(metrics_json=run["results"] / "metrics.json", score_files=run["score_files"],
                 answer_logs=[run["results"] / "answers"], negatives=run["negatives"], embeddings=run["embeddings"],
                 view=run["view"], out=out)
    # the page alone, copied away from its figures folder: it must not need it
    alone = tmp_path_factory.mktemp("alone") / "report.html"
    shutil.copy(out, alone)
    return alone


def test_console_error_detection_catches_a_broken_page(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>console.error("boom"); undefinedFn();</script><img src="missing.png"></body></html>')
    res = chromium(bad, tmp_path / "profile", "--dump-dom")
    assert console_errors(res.stderr), res.stderr[-2000:]


def test_report_renders_without_console_errors_and_with_content(page, tmp_path):
    res = chromium(page, tmp_path / "profile", "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    assert console_errors(res.stderr) == []
    dom = res.stdout
    assert dom.count('<table class="paper"') == 2
    assert len(re.findall(r'<img src="data:image/png;base64,', dom)) > 6
    # the payloads arrive as text, never as elements
    assert "&lt;script&gt;alert('xss')&lt;/script&gt; a red bicycle" in dom
    assert '&lt;img src=x onerror="alert(1)"&gt; a blue kite' in dom
    assert "<script" not in dom.lower()
    assert "onerror=" not in re.sub(r"&lt;img[^<]*", "", dom)


def test_screenshot_saved_as_artifact(page, tmp_path, record_artifact):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    res = chromium(page, tmp_path / "profile", "--window-size=1280,2400", "--hide-scrollbars", f"--screenshot={shot}")
    assert res.returncode == 0, res.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    record_artifact(shot)  # listed under "test artifacts" at the end of the pytest output
