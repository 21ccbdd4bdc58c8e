"""Running the app: which ONNX file to serve, uvicorn with connection limits, and worker processes.

Several workers on Linux each listen on the port with SO_REUSEPORT, so the kernel spreads
connections over them (uvicorn's own ``workers`` share one socket, and asyncio accepts new
connections in bursts, so one worker can end up with nearly all of them). Before the workers bind,
the parent binds the port once *without* SO_REUSEPORT: a second ``digitkit serve`` on a port that
is taken fails there, instead of silently sharing the port.
"""

from __future__ import annotations

import multiprocessing
import resource
import signal
import socket
import sys
from pathlib import Path

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from digitkit import DigitkitError
from digitkit.classifier import Classifier, load_classifier

HEADERS_SECONDS = 10.0  # a connection must send a request's headers within this, or it is closed
MAX_CONNECTIONS = 1000  # per worker; more get 503 (uvicorn's limit_concurrency)


def load_served_model(path: str | Path) -> Classifier:
    """The served model (an .onnx file, or a .tflite one in the LiteRT interpreter); one thread per
    session, since each request is one small image."""
    return load_classifier(path, threads=1)


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a deadline for each request's headers: a client that connects and
    sends nothing, or trickles a header a byte at a time, is disconnected after ``HEADERS_SECONDS``
    (uvicorn itself waits forever). Bodies have their own deadline (serve.app.BodyLimit)."""

    headers_deadline = None

    def _arm(self) -> None:
        self._disarm()
        self.headers_deadline = self.loop.call_later(HEADERS_SECONDS, self._headers_timeout)

    def _disarm(self) -> None:
        if self.headers_deadline is not None:
            self.headers_deadline.cancel()
            self.headers_deadline = None

    def _headers_timeout(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)


def _raise_file_limit() -> None:
    """Use the hard limit on open files: every idle client holds one until its deadline."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def check_port(port: int, workers: int = 1) -> int:
    """A port a server can listen on, and a number of worker processes it can start."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise DigitkitError(f"port must be from 1 to 65535, got {port}")
    if workers < 1:
        raise DigitkitError(f"workers must be at least 1, got {workers}")
    return port


def _uvicorn_config(app, **kwargs):
    import uvicorn

    return uvicorn.Config(app, http=GuardedHttpProtocol, log_level="warning", limit_concurrency=MAX_CONNECTIONS,
                          timeout_keep_alive=5, **kwargs)


def _socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as err:
        raise DigitkitError(f"cannot listen on {host}: {err.strerror}") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise DigitkitError(f"cannot listen on {host}:{port} ({err.strerror}); choose another --port") from None
    return sock


def _listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound without SO_REUSEPORT: fails if anything (another server too) holds the port."""
    return _socket(host, port, reuse_port=False)


def run_server(onnx_path: Path, host: str, port: int, workers: int = 1, allowed_hosts: set[str] | None = None,
               on_ready=None, token: str | None = None, classifier: Classifier | None = None) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM). ``classifier``: the model at ``onnx_path``,
    already loaded (a single server process uses it; worker processes load their own)."""
    import uvicorn

    from digitkit.serve.app import create_app

    check_port(port, workers)
    _raise_file_limit()
    allowed = set(allowed_hosts or ())
    if workers == 1 or not sys.platform.startswith("linux"):
        sock = _listening_socket(host, port)
        sock.listen(2048)
        if on_ready:
            on_ready()
        served = classifier or load_served_model(onnx_path)
        config = _uvicorn_config(create_app(served, allowed, token, port), workers=1)
        uvicorn.Server(config).run(sockets=[sock])
        return
    _listening_socket(host, port).close()  # fail here, clearly, if the port is taken
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_reuseport_worker, args=(str(onnx_path), host, port, allowed, token),
                                   daemon=True)
                 for _ in range(workers)]
    for process in processes:
        process.start()
    if on_ready:
        on_ready()
    # Stop the workers whether the server is stopped with Ctrl-C or with SIGTERM.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(5)


def _reuseport_worker(onnx_path: str, host: str, port: int, allowed: set[str], token: str | None) -> None:
    import ctypes

    import uvicorn

    from digitkit.serve.app import create_app

    # Die with the parent even if it is killed outright (PR_SET_PDEATHSIG = 1).
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    _raise_file_limit()
    sock = _socket(host, port, reuse_port=True)
    sock.listen(2048)
    config = _uvicorn_config(create_app(load_served_model(onnx_path), allowed, token, port))
    uvicorn.Server(config).run(sockets=[sock])


def run_teach(workspace_dir: str | Path, init: str | None, host: str, port: int, allowed_hosts: set[str] | None = None,
              on_ready=None, model_name: str | None = None, token: str | None = None) -> None:
    """Serve the Teach page until interrupted; training runs in a worker process."""
    import uvicorn

    from digitkit.teach import Trainer, Workspace
    from digitkit.serve.teach_app import create_teach_app

    check_port(port)
    _raise_file_limit()
    workspace = Workspace(workspace_dir, model_name)
    sock = _listening_socket(host, port)
    sock.listen(2048)
    trainer = Trainer(workspace, init)
    try:
        if on_ready:
            on_ready()
        config = _uvicorn_config(create_teach_app(workspace, trainer, set(allowed_hosts or ()), token, port))
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        trainer.close()
