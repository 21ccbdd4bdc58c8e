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
