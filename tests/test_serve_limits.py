"""`digitkit serve` under hostile clients: oversized, chunked, slow and half-sent requests, idle
sockets, odd JSON, foreign Host headers, a second server on the same port. Each gets a clear 4xx (or
is disconnected), and the server keeps answering everyone else."""

import io
import json
import socket
import threading
import time

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from digitkit import DigitkitError
from digitkit.serve import app as app_module
from digitkit.serve import guards as guards_module
from digitkit.serve import server as server_module
from digitkit.serve.app import MAX_BODY_BYTES, create_app
from digitkit.predict import served_model_path
from digitkit.serve.server import load_served_model


@pytest.fixture(scope="module")
def classifier(onnx_model):
    return load_served_model(served_model_path(onnx_model))


@pytest.fixture(scope="module")
def client(classifier):
    return TestClient(create_app(classifier))


def png(size=140) -> bytes:
    image = Image.new("L", (size, size), 255)
    from PIL import ImageDraw

    ImageDraw.Draw(image).line([(size * 0.5, size * 0.15), (size * 0.5, size * 0.85)], fill=0, width=size // 14)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class LiveServer:
    """The app in uvicorn with digitkit's connection guard, in a thread, on a free port."""

    def __init__(self, app):
        import uvicorn

        self.sock = server_module._listening_socket("127.0.0.1", 0)
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(server_module._uvicorn_config(app))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                break
            time.sleep(0.02)

    def request(self, raw: bytes, timeout=10.0) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(raw)
            return _read_response(s)

    def get(self, path="/healthz") -> int:
        reply = self.request(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        return int(reply.split(b" ", 2)[1])

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


def _read_response(s) -> bytes:
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data:
            head, _, body = data.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
            if length and len(body) >= length[0]:
                break
    return data


@pytest.fixture
def live(classifier, monkeypatch):
    monkeypatch.setattr(server_module, "HEADERS_SECONDS", 0.5)
    monkeypatch.setattr(guards_module, "BODY_SECONDS", 0.5)
    server = LiveServer(create_app(classifier))
    yield server
    server.stop()


# -- bodies ----------------------------------------------------------------------------------------
def test_chunked_upload_over_the_limit_is_a_413(client, monkeypatch):
    # The test client never says its body is over: the drain after the 413 would wait out the
    # body deadline (a real client's case is test_early_413_reaches_a_client_still_sending).
    monkeypatch.setattr(guards_module, "BODY_SECONDS", 1.0)

    def chunks():
        for _ in range(MAX_BODY_BYTES // 65536 + 8):
            yield b"\0" * 65536

    for kind in ("multipart/form-data; boundary=b", "application/json"):  # both kinds the API reads
        response = client.post("/api/predict", content=chunks(), headers={"content-type": kind})
        assert response.status_code == 413 and "KiB" in response.json()["detail"]


def test_early_413_reaches_a_client_still_sending(live):
    body = b"\0" * (MAX_BODY_BYTES + 100_000)
    head = (f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as s:
        s.sendall(head)
        for i in range(0, len(body), 65536):  # keeps sending after the server has decided
            s.sendall(body[i : i + 65536])
        reply = _read_response(s)
    assert reply.startswith(b"HTTP/1.1 413")


def test_a_body_that_never_finishes_gets_a_408(live):
    head = (b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000\r\n\r\n" + b"{" * 100)
    start = time.perf_counter()
    reply = live.request(head)
    assert reply.startswith(b"HTTP/1.1 408") and time.perf_counter() - start < 5


def test_idle_and_half_sent_connections_are_closed_and_others_still_served(live):
    idle = [socket.create_connection(("127.0.0.1", live.port)) for _ in range(200)]
    trickle = socket.create_connection(("127.0.0.1", live.port))
    trickle.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127")  # never finishes its headers
    try:
        assert live.get() == 200  # served while 201 sockets sit there
        time.sleep(1.5)
        for s in idle[:20] + [trickle]:
            s.settimeout(2)
            assert s.recv(1) == b""  # closed by the server
    finally:
        for s in idle + [trickle]:
            s.close()


def test_cpu_work_never_blocks_the_event_loop(classifier, monkeypatch):
    """A slow prediction runs in a worker thread: /healthz answers while it is in progress."""
    started, release = threading.Event(), threading.Event()
    real = app_module.predict_image

    def slow(clf, image):
        started.set()
        release.wait(10)
        return real(clf, image)

    monkeypatch.setattr(app_module, "predict_image", slow)
    server = LiveServer(create_app(classifier))
    try:
        upload = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\"\r\n"
                  b"Content-Type: image/png\r\n\r\n" + png() + b"\r\n--b--\r\n")
        head = (f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                f"Content-Length: {len(upload)}\r\nConnection: close\r\n\r\n").encode()
        result = {}
        worker = threading.Thread(target=lambda: result.setdefault("reply", server.request(head + upload)))
        worker.start()
        assert started.wait(10)
        assert server.get() == 200  # while the prediction is still running
        release.set()
        worker.join(10)
        assert result["reply"].startswith(b"HTTP/1.1 200")
    finally:
        release.set()
        server.stop()


# -- JSON ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, message", [
    (b'{"pixels": ' + json.dumps([[10**400] * 28] * 28).encode() + b"}", "0 to 255"),
    (b'{"pixels": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply|28 rows"),
    (json.dumps({"pixels": [["12"] * 28] * 28}).encode(), "no strings, booleans"),
    (json.dumps({"pixels": [[True] * 28] * 28}).encode(), "no strings, booleans"),
    (json.dumps({"pixels": [[None] * 28] * 28}).encode(), "no strings, booleans"),
    (b'{"pixels": [[NaN]]}', "not a number JSON allows"),
    (json.dumps({"pixels": [[0] * 28] * 27 + [[0] * 27]}).encode(), "28 rows of 28"),
    (b"\xff\xfe not utf-8", "malformed JSON|utf-8|decode"),
])
def test_odd_json_is_a_422(client, body, message):
    response = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert __import__("re").search(message, response.json()["detail"])


# -- hosts, ports ----------------------------------------------------------------------------------
@pytest.mark.parametrize("host, allowed", [
    ("127.0.0.1:8000", True), ("localhost:8000", True), ("[::1]:8000", True), ("192.168.1.20:8000", True),
    ("attacker.example:8000", False), ("localhost.attacker.example", False), ("", False),
])
def test_host_header_must_be_an_address_or_an_allowed_name(classifier, host, allowed):
    client = TestClient(create_app(classifier))
    response = client.get("/healthz", headers={"host": host})
    assert (response.status_code == 200) == allowed, response.text
    if not allowed:
        assert response.status_code == 400 and "--allow-host" in response.json()["detail"]


def test_allowed_host_names(classifier):
    client = TestClient(create_app(classifier, allowed_hosts={"digits.lan"}))
    assert client.get("/healthz", headers={"host": "digits.lan:8000"}).status_code == 200


def test_a_second_server_on_the_same_port_is_refused(live):
    with pytest.raises(DigitkitError, match="choose another --port"):
        server_module._listening_socket("127.0.0.1", live.port)


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_impossible_ports(onnx_model, capsys, port):
    from digitkit.cli import main

    assert main(["serve", str(onnx_model), "--port", port]) == 2
    assert "port must be from 1 to 65535" in capsys.readouterr().err


def test_serving_a_run_leaves_no_temporary_folders(tmp_path, onnx_model, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    run = onnx_model.parent
    assert served_model_path(run).parent == run  # the run's own export, reused, not a temporary copy
    assert not any(tmp_path.iterdir())
