"""Load test of `digitkit serve` on loopback: predictions per second and p50/p99 latency.

Starts the server as a user would (`digitkit serve MODEL`), then sends a fixed number of
POST /api/predict requests (a 140x140 PNG drawing, as the page sends) from 1 and from 16 concurrent
keep-alive clients, and counts errors (any status but 200).

    python benchmarks/serve_load.py runs/first                  # 10,000 requests at 1 and 16 clients, 2 workers
    python benchmarks/serve_load.py runs/first/MNISTClassifier.onnx --requests 2000 --concurrency 4

The client speaks HTTP/1.1 over asyncio streams itself: a full HTTP client library costs more CPU per
request than the server does, and on a 2-core machine it would be measuring itself.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
from PIL import Image, ImageDraw

BOUNDARY = "digitkitbench"


def drawing_png() -> bytes:
    """A drawn 7 as the page uploads it: the 280x280 pad at half resolution, 140x140 RGBA."""
    image = Image.new("RGBA", (140, 140), (255, 255, 255, 255))
    ImageDraw.Draw(image).line([(45, 35), (95, 35), (65, 110)], fill=(17, 17, 17, 255), width=10, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def request_bytes(port: int) -> bytes:
    png = drawing_png()
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{BOUNDARY}--\r\n".encode()
    head = (f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def client(port: int, payload: bytes, count: int, latencies: list, errors: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(count):
        start = time.perf_counter()
        writer.write(payload)
        await writer.drain()
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - start)
        if b" 200 " not in status_line:
            errors.append(status_line.decode().strip())
    writer.close()


async def load(port: int, requests: int, concurrency: int) -> dict:
    payload = request_bytes(port)
    latencies: list[float] = []
    errors: list[str] = []
    per_client = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
    start = time.perf_counter()
    await asyncio.gather(*(client(port, payload, n, latencies, errors) for n in per_client))
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": len(latencies), "errors": len(errors),
            "per_second": round(len(latencies) / wall, 1), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "seconds": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="run folder, .keras or .onnx")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--timeout", type=float, default=600, help="give up after this many seconds per level")
    parser.add_argument("--workers", type=int, default=2, help="server processes (default 2, one per core here)")
    args = parser.parse_args()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "digitkit.cli", "serve", args.model, "--port", str(port),
                               "--workers", str(args.workers)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.25)
        asyncio.run(load(port, 200, 4))  # warm-up
        results = [asyncio.run(asyncio.wait_for(load(port, args.requests, c), args.timeout))
                   for c in args.concurrency]
    finally:
        server.terminate()
        server.wait(10)
    for r in results:
        print(json.dumps(r))
    print("\n| clients | requests | errors | predictions/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['concurrency']} | {r['requests']} | {r['errors']} | {r['per_second']} | {r['p50_ms']} | {r['p99_ms']} |")


if __name__ == "__main__":
    main()
