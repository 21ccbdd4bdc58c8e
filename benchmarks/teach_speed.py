"""The Teach page: from pressing Train to a usable model, with 3 classes x 15 drawings.

Starts `digitkit teach` as a user would (a fresh workspace, `--init RUN`), adds three classes of 15
drawings each through the page's API (140x140 PNGs like the page sends: circles, vertical lines and
crosses, each drawn a little differently), then presses Train `--repeat` times and measures, each time:

- ready: from the Train request to the trained model answering predictions (its ONNX file written);
- Core ML: until the zipped `.mlpackage` can be downloaded;
- that the three classes are read right (one fresh drawing each).

    python benchmarks/teach_speed.py runs/first
    python benchmarks/teach_speed.py runs/first --repeat 5 --json teach.json

Target (issue: teach page): under 20 s from Train to a usable model on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "line", "cross")


def drawing(kind: str, rng: np.random.Generator) -> bytes:
    image = Image.new("RGBA", (140, 140), (255, 255, 255, 255))
    draw = ImageDraw.Draw(image)
    j = lambda: rng.uniform(-10, 10)  # noqa: E731
    ink = dict(fill=(17, 17, 17, 255), width=10)
    if kind == "circle":
        draw.ellipse([30 + j(), 30 + j(), 110 + j(), 110 + j()], outline=ink["fill"], width=10)
    elif kind == "line":
        draw.line([(70 + j(), 20 + j()), (70 + j(), 120 + j())], **ink)
    else:
        draw.line([(30 + j(), 30 + j()), (110 + j(), 110 + j())], **ink)
        draw.line([(110 + j(), 30 + j()), (30 + j(), 110 + j())], **ink)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def call(url: str, method: str = "GET", body: bytes | None = None, content_type: str | None = None):
    request = urllib.request.Request(url, data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"{}")


def upload(url: str, png: bytes):
    body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\"\r\nContent-Type: image/png\r\n\r\n"
            + png + b"\r\n--b--\r\n")
    return call(url, "POST", body, "multipart/form-data; boundary=b")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("init", help="the digit run to start from (digitkit teach --init)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    base = f"http://127.0.0.1:{args.port}"
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen([sys.executable, "-m", "digitkit", "teach", "--workspace", str(Path(tmp) / "ws"),
                                   "--init", args.init, "--port", str(args.port)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for _ in range(240):
                try:
                    if call(base + "/api/teach")["state"]["status"] == "idle":
                        break
                except OSError:
                    if server.poll() is not None:
                        raise SystemExit(f"digitkit teach exited: {server.stdout.read()}")
                time.sleep(0.25)
            for name in CLASSES:
                call(base + "/api/teach/classes", "POST", json.dumps({"name": name}).encode(), "application/json")
                for _ in range(15):
                    upload(f"{base}/api/teach/classes/{name}/examples", drawing(name, rng))
            rows = []
            for attempt in range(args.repeat):
                previous = call(base + "/api/teach")["state"].get("run")
                start = time.perf_counter()
                call(base + "/api/teach/train", "POST", b"")
                ready = coreml = None
                while coreml is None:
                    state = call(base + "/api/teach")["state"]
                    if state.get("error"):
                        raise SystemExit(f"training failed: {state['error']}")
                    if ready is None and state.get("onnx") and state.get("run") != previous:
                        ready = time.perf_counter() - start
                    if ready is not None and state.get("coreml"):
                        coreml = time.perf_counter() - start
                    time.sleep(0.1)
                answers = {name: upload(base + "/api/teach/predict", drawing(name, rng))["label"] for name in CLASSES}
                rows.append({"attempt": attempt + 1, "ready_seconds": round(ready, 1), "coreml_seconds": round(coreml, 1),
                             "epochs": state.get("epochs"), "test_accuracy": state.get("test_accuracy"),
                             "read_right": sum(answers[n] == n for n in CLASSES)})
                print(json.dumps(rows[-1]), flush=True)
        finally:
            server.terminate()
            server.wait(10)
    print("\n| try | Train → usable model (s) | → Core ML ready (s) | test accuracy | fresh drawings read right |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['attempt']} | {r['ready_seconds']:.1f} | {r['coreml_seconds']:.1f} | {r['test_accuracy']:.0%} | "
              f"{r['read_right']}/3 |")
    print(f"\nmedian Train → usable model: {np.median([r['ready_seconds'] for r in rows]):.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
