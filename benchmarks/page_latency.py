"""What a person waits for on the pages: from lifting the pen to the answer on screen.

Starts `digitkit serve MODEL` (and, with --teach, `digitkit teach` on a fresh workspace of three
drawn classes, trained once through its API), opens each page in Debian's Chromium at a desktop and
a phone size, draws strokes with the mouse, and reads inside the page, with performance.now(), the
time from each pointerup to the answer label changing (a MutationObserver). It also times the three
ways a page can turn the pad into a PNG right after a pointerup: canvas.toBlob (an idle task),
toDataURL (synchronous) and OffscreenCanvas.convertToBlob.

    python benchmarks/page_latency.py runs/first                    # the drawing page
    python benchmarks/page_latency.py runs/first --teach            # and Teach's Try mode

Before/after: run the same script with the code of another commit, for example
`git worktree add /tmp/before eaad66a && PYTHONPATH=/tmp/before/src python benchmarks/page_latency.py runs/first --teach`.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from browser_helpers import (ANSWER_PROBE, CHROMIUM, CHROMIUM_ARGS, LATENCY_STROKES, answer_latencies,  # noqa: E402
                             digitkit_server, stroke_on_pad)

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}

ENCODERS = """(which) => new Promise((done) => {
  window.addEventListener('pointerup', () => {
    const pad = document.getElementById('pad'), t0 = performance.now();
    if (which === 'toBlob') {
      const small = document.createElement('canvas'); small.width = small.height = 140;
      small.getContext('2d').drawImage(pad, 0, 0, 140, 140);
      small.toBlob(() => done(performance.now() - t0), 'image/png');
    } else if (which === 'toDataURL') {
      const small = document.createElement('canvas'); small.width = small.height = 140;
      small.getContext('2d').drawImage(pad, 0, 0, 140, 140);
      const url = small.toDataURL('image/png'), bytes = atob(url.slice(url.indexOf(',') + 1));
      new Blob([Uint8Array.from(bytes, (c) => c.charCodeAt(0))]); done(performance.now() - t0);
    } else {
      const small = new OffscreenCanvas(140, 140);
      small.getContext('2d').drawImage(pad, 0, 0, 140, 140);
      small.convertToBlob({type: 'image/png'}).then(() => done(performance.now() - t0));
    }
  }, {capture: true, once: true});
})"""


def page_waits(browser, url: str, viewport: dict, setup=None, rounds: int = 3) -> list[float]:
    waits = []
    for _ in range(rounds):
        page = browser.new_page(viewport=viewport)
        page.goto(url)
        page.wait_for_function("document.querySelectorAll('.bars li').length > 0")
        if setup:
            setup(page)
        page.evaluate(ANSWER_PROBE)
        waits += answer_latencies(page, [lambda s=s: stroke_on_pad(page, s) for s in LATENCY_STROKES])
        page.close()
    return waits


def encoder_times(browser, url: str, viewport: dict, tries: int = 5) -> dict[str, list[float]]:
    page = browser.new_page(viewport=viewport)
    page.goto(url)
    page.wait_for_function("document.querySelectorAll('.bars li').length > 0")
    times = {}
    for which in ("toBlob", "toDataURL", "convertToBlob"):
        times[which] = []
        for i in range(tries):
            page.evaluate(f"() => {{ window.encoded = ({ENCODERS})('{which}'); }}")  # waits for the next pointerup
            stroke_on_pad(page, LATENCY_STROKES[i % len(LATENCY_STROKES)])
            times[which].append(page.evaluate("window.encoded"))
    page.close()
    return times


def shape_png(kind: str, jitter: float) -> bytes:
    image = Image.new("RGBA", (140, 140), (255, 255, 255, 255))
    draw = ImageDraw.Draw(image)
    j = jitter
    if kind == "circle":
        draw.ellipse([30 + j, 30 - j, 110 - j, 110 + j], outline=(17, 17, 17, 255), width=10)
    elif kind == "line":
        draw.line([(70 + j, 20), (70 - j, 120)], fill=(17, 17, 17, 255), width=10)
    else:
        draw.line([(30, 30 + j), (110, 110 - j)], fill=(17, 17, 17, 255), width=10)
        draw.line([(110, 30 - j), (30, 110 + j)], fill=(17, 17, 17, 255), width=10)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def post(url: str, body: bytes, content_type: str) -> dict:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def trained_teach_workspace(url: str) -> None:
    """Three classes of six drawings each, trained: Teach's Try mode then has a model."""
    for kind in ("circle", "line", "cross"):
        post(f"{url}/api/teach/classes", json.dumps({"name": kind}).encode(), "application/json")
        for n in range(6):
            body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\"\r\n"
                    b"Content-Type: image/png\r\n\r\n" + shape_png(kind, n - 3) + b"\r\n--b--\r\n")
            post(f"{url}/api/teach/classes/{kind}/examples", body, "multipart/form-data; boundary=b")
    post(f"{url}/api/teach/train", b"", "application/json")
    deadline = time.time() + 600
    while time.time() < deadline:
        with urllib.request.urlopen(f"{url}/api/teach", timeout=10) as response:
            state = json.loads(response.read())["state"]
        if state.get("onnx") and state.get("status") not in ("queued", "training"):
            return
        time.sleep(1)
    raise SystemExit("the Teach workspace did not train within 10 minutes")


def row(page: str, viewport: str, waits: list[float]) -> str:
    return f"| {page} | {viewport} | {len(waits)} | {statistics.median(waits):.0f} | {max(waits):.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a run folder or .onnx file for `digitkit serve` (and Teach's --init)")
    parser.add_argument("--teach", action="store_true", help="also Teach's Try mode (trains a small workspace first)")
    parser.add_argument("--rounds", type=int, default=3, help="pages opened per viewport, six strokes each")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rows = ["| page | viewport | strokes | median ms | worst ms |", "| --- | --- | --- | --- | --- |"]
    encoders = ["| viewport | toBlob ms (median, worst) | toDataURL ms | OffscreenCanvas.convertToBlob ms |",
                "| --- | --- | --- | --- |"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        with digitkit_server("serve", args.model) as url:
            for name, viewport in VIEWPORTS.items():
                rows.append(row("drawing page", name, page_waits(browser, url, viewport, rounds=args.rounds)))
                times = encoder_times(browser, url, viewport)
                encoders.append(f"| {name} | " + " | ".join(
                    f"{statistics.median(t):.0f}, {max(t):.0f}" for t in times.values()) + " |")
        if args.teach:
            run = args.model if Path(args.model).is_dir() else str(Path(args.model).parent)
            with tempfile.TemporaryDirectory() as workspace, \
                    digitkit_server("teach", "--workspace", workspace, "--init", run) as url:
                trained_teach_workspace(url)

                def try_mode(page):
                    page.check('input[name="mode"][value="try"]')

                for name, viewport in VIEWPORTS.items():
                    rows.append(row("Teach, Try mode", name,
                                    page_waits(browser, url, viewport, setup=try_mode, rounds=args.rounds)))
        browser.close()
    print("\n".join(rows))
    print()
    print("\n".join(encoders))


if __name__ == "__main__":
    main()
