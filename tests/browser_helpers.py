"""What the browser tests share: Debian's Chromium, where screenshots go, and a digitkit server
started as a user would, on loopback."""

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason="needs Debian's chromium (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def digitkit_server(*args: str, tries: int = 240):
    """``digitkit ARGS --port P`` running; yields its URL once /healthz answers, stops it after."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "digitkit", *args, "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(tries):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"digitkit {args[0]} exited: {process.stdout.read()}")
                time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        process.wait(10)


# What a person waits for: the time from lifting the pen (pointerup, seen first, in the capture phase)
# to the answer's label changing on screen (a MutationObserver), read inside the page.
ANSWER_PROBE = """() => {
  window.lifts = []; window.shown = [];
  window.addEventListener('pointerup', () => lifts.push(performance.now()), true);
  const label = document.getElementById('label');
  new MutationObserver(() => shown.push({t: performance.now(), label: label.textContent.trim()}))
    .observe(label, {childList: true, characterData: true, subtree: true});
}"""


def answer_latencies(page, draw_strokes) -> list[float]:
    """Milliseconds from each stroke's pointerup to the next answer shown, one per call of the
    ``draw_strokes`` functions (each draws one stroke). Needs ANSWER_PROBE installed."""
    waits = []
    for draw in draw_strokes:
        draw()
        page.wait_for_function("lifts.length && shown.some(s => s.t > lifts[lifts.length - 1])", timeout=10000)
        waits.append(page.evaluate("(() => { const lift = lifts[lifts.length - 1];"
                                   " return shown.find(s => s.t > lift).t - lift; })()"))
    return waits


def stroke_on_pad(page, points, steps: int = 2):
    """One stroke through ``points`` given as fractions of the pad's width and height."""
    box = page.locator("#pad").bounding_box()
    at = lambda x, y: (box["x"] + box["width"] * x, box["y"] + box["height"] * y)  # noqa: E731
    page.mouse.move(*at(*points[0]))
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(*at(x, y), steps=steps)
    page.mouse.up()


# Six strokes that build a drawing on one pad (a 4, then more ink): each changes what the model sees.
LATENCY_STROKES = [
    [(0.35, 0.15), (0.25, 0.55), (0.7, 0.55)],
    [(0.6, 0.2), (0.6, 0.85)],
    [(0.2, 0.8), (0.3, 0.9)],
    [(0.75, 0.2), (0.8, 0.3)],
    [(0.45, 0.4), (0.5, 0.45)],
    [(0.15, 0.2), (0.15, 0.3)],
]
