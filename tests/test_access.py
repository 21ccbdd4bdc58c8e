"""Servers open to the network need their token: both servers bound to 0.0.0.0 as a user starts
them for a phone, reached through another loopback address (127.0.0.2, so nothing leaves this
machine). Without the token every endpoint that reads or changes anything answers 401 (a wrong one
403) and changes nothing; the printed URL sets the cookie in Chromium at a phone's size and the page
works; the token is nowhere in the server's output but the URLs it printed."""

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from browser_helpers import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, free_port, needs_chromium, stroke_on_pad

from digitkit import DigitkitError
from digitkit.serve.access import choose_token, cookie_name, is_loopback, urls

OTHER = "127.0.0.2"  # a client on "another machine": any loopback address but the one in the printed URL


def test_token_rules(monkeypatch):
    monkeypatch.delenv("DIGITKIT_TOKEN", raising=False)
    assert choose_token("127.0.0.1", None, False) is None and choose_token("localhost", None, False) is None
    assert choose_token("::1", None, False) is None
    made = choose_token("0.0.0.0", None, False)
    assert made and len(made) >= 32 and made != choose_token("0.0.0.0", None, False)
    assert choose_token("0.0.0.0", None, True) is None
    assert choose_token("127.0.0.1", "a-token-of-my-own-1234", False) == "a-token-of-my-own-1234"
    monkeypatch.setenv("DIGITKIT_TOKEN", "from-the-environment-1234")
    assert choose_token("0.0.0.0", None, False) == "from-the-environment-1234"
    with pytest.raises(DigitkitError, match="contradict"):
        choose_token("0.0.0.0", None, True)
    with pytest.raises(DigitkitError, match="at least 16"):
        choose_token("0.0.0.0", "short", False)
    assert is_loopback("127.0.0.5") and not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


def test_printed_urls_are_addresses_a_phone_can_open():
    links = urls("0.0.0.0", 8123, "T" * 20)
    assert links and all(link.endswith(":8123/?token=" + "T" * 20) for link in links)
    assert not any("0.0.0.0" in link for link in links)
    assert links[-1].startswith("http://127.0.0.1:8123/")  # this machine, last
    assert urls("127.0.0.1", 8000, None) == ["http://127.0.0.1:8000/"]


@contextlib.contextmanager
def network_server(tmp_path, *args, ready: str = "token="):
    """``digitkit ARGS --host 0.0.0.0 --port P``; yields (base URL through 127.0.0.2, its output file)
    once it answers and has printed ``ready``."""
    port = free_port()
    log = tmp_path / f"{args[0]}-output.txt"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "digitkit", *args, "--host", "0.0.0.0", "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
    url = f"http://{OTHER}:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                if ready in log.read_text():
                    break
            except OSError:
                pass
            if process.poll() is not None:
                pytest.fail(f"digitkit {args[0]} exited: {log.read_text()}")
            time.sleep(0.25)
        yield url, log
    finally:
        process.terminate()
        process.wait(10)


def call(method: str, url: str, headers: dict | None = None, body: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def printed_token(log) -> str:
    return re.search(r"\?token=([A-Za-z0-9_-]+)", log.read_text()).group(1)


def operations(url: str) -> list[tuple[str, str]]:
    """(method, path) of every documented endpoint that needs the token, path parameters filled in."""
    with urllib.request.urlopen(url + "/openapi.json") as response:
        schema = json.loads(response.read())
    out = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            if op.get("security") == []:
                continue
            filled = path.replace("{name}", "circle").replace("{file}", "20260101-000000-00000000.png") \
                         .replace("{what}", "dataset")
            out.append((method.upper(), filled))
    return out


def test_both_servers_refuse_every_endpoint_without_the_token(tmp_path, onnx_model):
    workspace = tmp_path / "ws"
    with network_server(tmp_path, "teach", "--workspace", str(workspace), "--init", str(onnx_model.parent)) as (url, log):
        token = printed_token(log)
        ops = operations(url)
        assert ("POST", "/api/teach/classes") in ops and ("GET", "/api/teach") in ops and len(ops) >= 9
        for method, path in ops:
            body = b"{}" if method in ("POST", "PUT") else None
            assert call(method, url + path, {"Content-Type": "application/json"}, body) == 401, (method, path)
            assert call(method, url + path, {"Authorization": "Bearer wrong-token-0123456789"}, body) == 403, (method, path)
        # Nothing changed: no class was added by any of those requests.
        assert [p.name for p in (workspace / "data").iterdir()] == []
        assert call("GET", url + "/") == 401  # the page says where the token is
        bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        assert call("POST", url + "/api/teach/classes", bearer, json.dumps({"name": "circle"}).encode()) == 201
        assert call("GET", url + "/api/teach", bearer) == 200
        assert (workspace / "data" / "circle").is_dir()
        # An Origin naming the server itself does not stand in for the token (any client can send one).
        assert call("POST", url + "/api/teach/classes", {"Origin": url, "Content-Type": "application/json"},
                    json.dumps({"name": "square"}).encode()) == 401
        assert not (workspace / "data" / "square").exists()
    output = log.read_text()
    assert output.count(token) == sum(1 for line in output.splitlines() if "?token=" in line)

    with network_server(tmp_path, "serve", str(onnx_model)) as (url, log):
        token = printed_token(log)
        ops = operations(url)
        assert ("POST", "/api/predict") in ops and ("GET", "/api/model") in ops
        for method, path in ops:
            assert call(method, url + path) == 401, (method, path)
            assert call(method, url + path, {"Authorization": "Bearer wrong-token-0123456789"}) == 403, (method, path)
        assert call("GET", url + "/api/model", {"Authorization": f"Bearer {token}"}) == 200
        # The token on a page URL: the cookie, then the URL without the token.
        request = urllib.request.Request(f"{url}/?token={token}")
        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as redirect:
            opener.open(request, timeout=10)
        assert redirect.value.code == 303 and redirect.value.headers["Location"] == "/"
        cookie = redirect.value.headers["Set-Cookie"]
        assert cookie.startswith(f"{cookie_name(int(url.rsplit(':', 1)[1]))}={token};")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    output = log.read_text()
    assert output.count(token) == sum(1 for line in output.splitlines() if "?token=" in line)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_no_token_is_explicit_and_warned(tmp_path, onnx_model):
    with network_server(tmp_path, "serve", str(onnx_model), "--no-token", ready="On this machine") as (url, log):
        assert call("GET", url + "/api/model") == 200
    output = log.read_text()
    assert "warning" in output and "anyone who can reach port" in output and "token=" not in output


@needs_chromium
def test_the_printed_url_works_on_a_phone(tmp_path, onnx_model):
    """The URL as printed, opened at a phone's size: the cookie is set, the token leaves the address
    bar, and drawing a digit shows the answer."""
    from playwright.sync_api import sync_playwright

    with network_server(tmp_path, "serve", str(onnx_model)) as (url, log), sync_playwright() as p:
        printed = re.search(r"http://[^\s]+\?token=[A-Za-z0-9_-]+", log.read_text()).group(0)
        port = url.rsplit(":", 1)[1]
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
        page.goto(re.sub(r"^http://[^/]+", f"http://{OTHER}:{port}", printed))
        address = page.url
        page.wait_for_function("document.querySelectorAll('.bars li').length === 10")
        stroke_on_pad(page, [(0.5, 0.15), (0.5, 0.85)])
        page.wait_for_function("document.getElementById('label').textContent.trim() !== '–'", timeout=15000)
        label = page.text_content("#label").strip()
        cookies = page.context.cookies()
        page.wait_for_timeout(400)  # the bars' width transition
        page.screenshot(path=str(ARTIFACTS / "access-phone.png"), full_page=True)
        browser.close()
    assert address == f"http://{OTHER}:{port}/"  # the token is not left in the address bar
    assert label == "1"
    (cookie,) = [c for c in cookies if c["name"] == cookie_name(int(port))]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
