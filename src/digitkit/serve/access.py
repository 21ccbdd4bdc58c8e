"""Who may use a server that listens beyond this machine: a token, as Jupyter does it.

A server bound to loopback needs nothing (only this machine reaches it) unless a token is given.
Bound to a network address, it makes a random token (or takes ``--token`` / ``DIGITKIT_TOKEN``) and
prints it inside the URL it shows. The first visit with ``?token=`` sets an HttpOnly,
SameSite=Strict cookie and redirects to the clean URL, so the page's own requests carry the cookie;
scripts send ``Authorization: Bearer TOKEN``. Everything but ``/healthz`` and the page's static
files needs one of the two: none is 401, a wrong one 403, and nothing runs or changes. The Origin
check (serve.app.OriginCheck) still stops other sites' pages in a browser; the token stops clients
on the same network, which can send any header.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import socket
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from digitkit import DigitkitError

TOKEN_ENV = "DIGITKIT_TOKEN"
# Readiness checks, the page's scripts and styles, and the API's description: no data in any of them,
# and tools read the description before they hold a credential.
OPEN_PATHS = ("/healthz", "/static/", "/openapi.json", "/docs")
MIN_TOKEN_LENGTH = 16


def cookie_name(port: int) -> str:
    """Cookies are not kept apart by port: a server on 8000 and one on 8791 need their own names."""
    return f"digitkit-token-{port}"


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def choose_token(host: str, token: str | None, no_token: bool) -> str | None:
    """The token the server requires, or None. ``token`` is --token (else $DIGITKIT_TOKEN)."""
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    if no_token and token is not None:
        raise DigitkitError(f"--no-token and a token (--token or ${TOKEN_ENV}) contradict each other; give one")
    if token is not None:
        if len(token) < MIN_TOKEN_LENGTH or not token.isprintable() or any(c.isspace() for c in token):
            raise DigitkitError(f"a token needs at least {MIN_TOKEN_LENGTH} characters without spaces; "
                                "leave --token out and one is made for you")
        return token
    if no_token or is_loopback(host):
        return None
    return secrets.token_urlsafe(24)


def lan_addresses(host: str) -> list[str]:
    """The addresses another device can open for a server bound to ``host``: the host itself, or for
    0.0.0.0 / :: the machine's own non-loopback addresses (IPv4 first)."""
    bare = host.strip("[]")
    if bare not in ("0.0.0.0", "::", ""):
        return [bare]
    import psutil  # the interfaces' addresses, on Linux, macOS and Windows alike

    families = (socket.AF_INET,) if bare == "0.0.0.0" else (socket.AF_INET, socket.AF_INET6)
    found = []
    for family in families:
        for addresses in psutil.net_if_addrs().values():
            for address in addresses:
                if address.family != family:
                    continue
                ip = ipaddress.ip_address(address.address.split("%")[0])
                if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
                    found.append(str(ip))
    return list(dict.fromkeys(found))


def urls(host: str, port: int, token: str | None) -> list[str]:
    """What to print: one URL per address that reaches the server, each with its token."""
    query = f"/?token={token}" if token else "/"
    addresses = lan_addresses(host) if not is_loopback(host) else [host]
    if not is_loopback(host):
        addresses.append("127.0.0.1" if ":" not in host else "::1")  # this machine, too
    return [f"http://{f'[{a}]' if ':' in a else a}:{port}{query}" for a in addresses]


def qr_code(url: str) -> str:
    """The URL as a QR code of text blocks, for a phone's camera pointed at the terminal."""
    import io

    import segno

    out = io.StringIO()
    segno.make(url, error="l").terminal(out, compact=True, border=2)
    return out.getvalue()


class TokenGate:
    """ASGI middleware: requests without the token are answered 401 (none) or 403 (a wrong one)
    before the app sees them; ``?token=`` on a page URL sets the cookie and redirects to the URL
    without it. Comparisons take constant time."""

    def __init__(self, app, token: str | None, port: int):
        self.app, self.token, self.cookie = app, token, cookie_name(port)

    def _matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())

    def _presented(self, headers: dict) -> str | None:
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get(b"cookie", b"").decode("latin-1"))
        except Exception:  # a malformed Cookie header is no token
            return None
        return cookies[self.cookie].value if self.cookie in cookies else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.token is None or scope["path"].startswith(OPEN_PATHS):
            return await self.app(scope, receive, send)
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        from_url = [value for key, value in query if key == "token"]
        if from_url and scope["method"] in ("GET", "HEAD"):
            if self._matches(from_url[0]):
                return await self._redirect_with_cookie(scope, [(k, v) for k, v in query if k != "token"], send)
            return await self._refuse(scope, send, 403, "the token in the URL is not this server's token")
        presented = self._presented(dict(scope["headers"]))
        if presented is None:
            return await self._refuse(scope, send, 401, "this server needs its token: open the URL it printed "
                                                        "(…/?token=…) or send the header Authorization: Bearer TOKEN")
        if not self._matches(presented):
            return await self._refuse(scope, send, 403, "wrong token: use the one the server printed")
        await self.app(scope, receive, send)

    async def _redirect_with_cookie(self, scope, rest: list[tuple[str, str]], send) -> None:
        location = scope["path"] + (f"?{urlencode(rest)}" if rest else "")
        cookie = f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", location.encode("latin-1")), (b"set-cookie", cookie.encode()),
                                (b"cache-control", b"no-store"), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    async def _refuse(self, scope, send, status: int, detail: str) -> None:
        from fastapi.responses import HTMLResponse, JSONResponse

        if scope["path"] == "/":  # a person opened the page without the token: tell them where it is
            response = HTMLResponse(f"<!doctype html><meta charset=utf-8><title>digitkit: token needed</title>"
                                    f"<p style='font:18px system-ui;margin:2em'>{detail}.</p>", status_code=status)
        else:
            response = JSONResponse({"detail": detail}, status_code=status)
        response.headers["www-authenticate"] = "Bearer"
        await response(scope, None, send)


def document_security(app, token_required: bool, port: int) -> None:
    """Declare the token in the app's OpenAPI document: bearer header or cookie, required when the
    server has a token (and 401/403 answers on every operation), optional on loopback without one."""
    build = app.openapi

    def openapi():
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["bearer"] = {"type": "http", "scheme": "bearer",
                             "description": "the token the server printed in its URL"}
        schemes["cookie"] = {"type": "apiKey", "in": "cookie", "name": cookie_name(port),
                             "description": "set by opening the printed URL (…/?token=…) once"}
        schema["security"] = [{"bearer": []}, {"cookie": []}] + ([] if token_required else [{}])
        problem = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                if path.startswith(OPEN_PATHS):
                    operation["security"] = []
                    continue
                for status, why in (("401", "no token"), ("403", "a wrong token, or another site's page")):
                    operation.setdefault("responses", {}).setdefault(status, {"description": why, "content": problem})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
