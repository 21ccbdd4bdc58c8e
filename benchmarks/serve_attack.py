"""`digitkit serve` under attack: does everyone else still get quick answers?

Starts the server as a user would (`digitkit serve MODEL`, one worker), then for `--seconds`:

- attackers, each in its own thread: one uploads the most expensive images digitkit accepts, one
  after another (16 MP thin-pen drawings, incompressible noise, a 4032x3024 photo); one holds 200 idle
  connections and trickles half-sent headers; one sends 3 MB bodies and bodies it never finishes;
- meanwhile a well-behaved client alternates GET /healthz and a normal prediction (the page's
  140x140 drawing), one request at a time, and records each latency.

Prints p50 / p99 / max for the well-behaved requests (target: p99 under 100 ms) and what the
attackers got back.

    python benchmarks/serve_attack.py runs/first
    python benchmarks/serve_attack.py runs/first/MNISTClassifier.onnx --seconds 20
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter

import numpy as np
from PIL import Image, ImageDraw

from digitkit.data.normalize import MAX_PIXELS


def png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def thin_pen(size: int) -> Image.Image:
    image = Image.new("L", (size, size), 255)
    ImageDraw.Draw(image).line([(size * 0.2, size * 0.2), (size * 0.8, size * 0.2), (size * 0.4, size * 0.9)],
                               fill=0, width=1)
    return image


def multipart(body: bytes) -> tuple[bytes, str]:
    data = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + body + b"\r\n--b--\r\n")
    return data, "multipart/form-data; boundary=b"


def request(port: int, method: str, path: str, body: bytes = b"", content_type: str = "", timeout=30.0) -> int:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if body or method == "POST":
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        reply = b""
        while b"\r\n" not in reply:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="run folder, .keras or .onnx")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    side = int(MAX_PIXELS**0.5)
    heavy = [multipart(png(thin_pen(side))), multipart(png(thin_pen(2000).convert("RGBA"))),
             multipart(png(Image.fromarray(np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)))),
             multipart(png(thin_pen(3000).resize((4032, 3024)).convert("RGB"), "JPEG"))]
    heavy = [h for h in heavy if len(h[0]) <= 2 * 1024 * 1024]  # what the body limit lets through
    normal = multipart(png(thin_pen(140).convert("RGBA")))

    server = subprocess.Popen([sys.executable, "-m", "digitkit", "serve", args.model, "--port", str(args.port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{args.port}/healthz", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(f"digitkit serve exited: {server.stdout.read()}")
                time.sleep(0.25)
        stop = time.time() + args.seconds
        attacks: Counter = Counter()

        def expensive_images():
            k = 0
            while time.time() < stop:
                body, kind = heavy[k % len(heavy)]
                attacks[f"expensive image → {request(args.port, 'POST', '/api/predict', body, kind)}"] += 1
                k += 1

        def idle_and_trickle():
            held = []
            while time.time() < stop:
                try:
                    s = socket.create_connection(("127.0.0.1", args.port), timeout=5)
                    s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 12")
                    held.append(s)
                    attacks["idle or half-sent connection opened"] += 1
                except OSError:
                    attacks["idle connection refused"] += 1
                if len(held) >= 200:
                    held.pop(0).close()
                time.sleep(0.02)
            for s in held:
                s.close()

        def oversized_and_unfinished():
            big = b"\0" * (3 * 1024 * 1024)
            while time.time() < stop:
                attacks[f"3 MB body → {request(args.port, 'POST', '/api/predict', big, 'image/png')}"] += 1
                try:
                    with socket.create_connection(("127.0.0.1", args.port), timeout=30) as s:
                        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                                  b"Content-Length: 100000\r\n\r\n" + b"\0" * 1000)
                        reply = s.recv(100)
                    attacks[f"unfinished body → {int(reply.split(b' ')[1]) if reply else 'closed'}"] += 1
                except OSError:
                    attacks["unfinished body → reset"] += 1

        threads = [threading.Thread(target=f, daemon=True) for f in (expensive_images, idle_and_trickle,
                                                                     oversized_and_unfinished)]
        for t in threads:
            t.start()
        time.sleep(1)  # let the attack get going
        latencies: dict[str, list[float]] = {"healthz": [], "predict": []}
        failures = Counter()
        while time.time() < stop:
            for kind in ("healthz", "predict"):
                began = time.perf_counter()
                status = request(args.port, "GET", "/healthz") if kind == "healthz" else \
                    request(args.port, "POST", "/api/predict", *normal)
                latencies[kind].append(1000 * (time.perf_counter() - began))
                if status != 200:
                    failures[f"{kind} {status}"] += 1
        for t in threads:
            t.join(60)
    finally:
        server.terminate()
        server.wait(10)

    result = {"seconds": args.seconds, "attacks": dict(attacks), "failures": dict(failures)}
    for kind, values in latencies.items():
        v = np.array(values)
        result[kind] = {"requests": len(v), "p50_ms": float(np.percentile(v, 50)), "p99_ms": float(np.percentile(v, 99)),
                        "max_ms": float(v.max())}
    print(json.dumps(result, indent=1))
    print("\n| well-behaved request | requests | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for kind in ("healthz", "predict"):
        r = result[kind]
        print(f"| {kind} | {r['requests']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} |")
    print(f"failed well-behaved requests: {sum(failures.values())}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
