"""What stands before every route of both servers: a body's size and pace (``BodyLimit``), the Host
header (``HostCheck``, against DNS rebinding) and a browser's Origin (``OriginCheck``, against
other sites' pages); the token check is serve.access. Each answers with ``{"detail": ...}``."""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import urlsplit

import anyio
from fastapi.responses import JSONResponse

BODY_SECONDS = 10.0  # a request body must arrive within this (half-sent requests are dropped)
MAX_BODY_BYTES = 2 * 1024 * 1024
DRAIN_BYTES = 16 * MAX_BODY_BYTES  # an oversized body is read and dropped up to this, so the client sees the 413


def problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


class BodyLimit:
    """Plain ASGI middleware: refuse a body over ``limit`` with 413 (a declared length at once; a
    chunked body as soon as it passes the limit, never holding more than the limit in memory), and a
    body that does not arrive within ``BODY_SECONDS`` with 408. An oversized body is read and
    dropped before answering (up to ``DRAIN_BYTES``), so a client still sending sees the 413 rather
    than a reset connection. Starlette's ``@app.middleware("http")`` costs more per request than
    the prediction."""

    def __init__(self, app, limit: int, larger: dict[str, int] | None = None):
        self.app, self.default, self.larger = app, limit, larger or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.larger.get(scope["path"], self.default)  # a phone photo is larger than a drawing
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._refuse(scope, receive, send, 413, self._too_big(limit))
            return
        received = 0
        deadline = asyncio.get_running_loop().time() + BODY_SECONDS
        refused = None
        body_done = scope["method"] in ("GET", "HEAD")

        async def limited_receive():
            nonlocal received, refused, body_done
            if body_done:  # after the body only the disconnect is left to hear: no deadline (streams)
                return await receive()
            timeout = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(timeout, 0.001))
            except TimeoutError:
                refused = "slow"
                raise BodyRefused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = "large"
                    raise BodyRefused
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        try:
            await self.app(scope, limited_receive, send)
        except Exception:  # whatever the app made of the refusal, answer for it
            if refused == "large":
                await self._refuse(scope, receive, send, 413, self._too_big(limit))
            elif refused == "slow":
                await problem(408, f"the request body did not arrive within {BODY_SECONDS:.0f} s")(
                    scope, receive, send)
            else:
                raise

    @staticmethod
    def _too_big(limit: int) -> str:
        return f"request body over {limit // 1024} KiB; send a smaller image"

    async def _refuse(self, scope, receive, send, status: int, detail: str) -> None:
        drained, more = 0, True
        try:
            with anyio.fail_after(BODY_SECONDS):
                while more and drained <= DRAIN_BYTES:
                    message = await receive()
                    if message["type"] != "http.request":
                        break
                    drained += len(message.get("body", b""))
                    more = message.get("more_body", False)
        except TimeoutError:
            pass
        await problem(status, detail)(scope, receive, send)


class BodyRefused(Exception):
    """Raised into the app when its body is too large or too slow; BodyLimit answers for it."""


class HostCheck:
    """Refuse requests whose Host is a domain name not on the allowed list: a web page from another
    site that rebinds its domain to this machine (DNS rebinding) would otherwise reach the API.
    IP-address hosts (what a phone on the LAN uses) and localhost are always allowed."""

    def __init__(self, app, allowed_hosts: set[str]):
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts} | {"localhost", "testserver"}

    def allows(self, host: str) -> bool:
        host = host.strip().lower()
        if host.startswith("["):  # [::1]:8000
            host = host[1 : host.find("]")] if "]" in host else host
        elif host.count(":") == 1:
            host = host.rsplit(":", 1)[0]
        try:
            ipaddress.ip_address(host)
            return True
        except ValueError:
            return host in self.allowed or host.rstrip(".") in self.allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if not host or not self.allows(host):
                response = problem(400, f"Host {host!r} is not allowed; open the server by its IP address or "
                                         "localhost, or start it with --allow-host NAME")
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


class OriginCheck:
    """Refuse state-changing requests (anything but GET, HEAD, OPTIONS) that a page of another site
    sends: their ``Origin`` (or, without one, ``Referer``) must be this server's own, as the Host
    header names it. Browsers send these cross-site without a preflight for forms, multipart uploads
    and text/plain bodies, so without this check any page the user visits could write into the
    workspace. Clients that send neither header (curl, scripts) are not browsers and pass."""

    SAFE = {"GET", "HEAD", "OPTIONS"}

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] not in self.SAFE:
            headers = dict(scope["headers"])
            host = headers.get(b"host", b"").decode("latin-1").lower()
            source = headers.get(b"origin") or headers.get(b"referer")
            if source is not None and not self.same_origin(source.decode("latin-1"), host):
                response = problem(403, "cross-origin request refused: only this server's own pages may change "
                                         "its state")
                return await response(scope, receive, send)
        await self.app(scope, receive, send)

    @staticmethod
    def same_origin(source: str, host: str) -> bool:
        parsed = urlsplit(source.strip())
        return parsed.scheme in ("http", "https") and bool(host) and parsed.netloc.lower() == host
