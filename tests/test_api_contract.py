"""The API contracts, read by an independent tester: schemathesis, from the servers' own
/openapi.json, against `digitkit serve` and `digitkit teach` started as a user would. Every check,
every phase that applies: no schema error, no undocumented status code or content type, no response
outside its schema, no 5xx. The servers require a token (as on a network) and schemathesis sends it;
its ignored_auth check also sends requests without it and expects them refused."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from browser_helpers import ARTIFACTS, digitkit_server

CONFIG = Path(__file__).with_name("schemathesis.toml")  # the one allowance: image uploads (read it)
SCHEMATHESIS = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
pytestmark = pytest.mark.skipif(not Path(SCHEMATHESIS).exists(), reason="needs schemathesis (pip install -e '.[dev]')")


TOKEN = "contract-test-token-0123456789"  # the servers run with a token, which schemathesis supplies


def schemathesis(url: str, report: str) -> subprocess.CompletedProcess:
    ARTIFACTS.mkdir(exist_ok=True)
    return subprocess.run([SCHEMATHESIS, "--config-file", str(CONFIG), "run", f"{url}/openapi.json", "--checks", "all",
                           "--header", f"Authorization: Bearer {TOKEN}",
                           "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "25",
                           "--workers", "1", "--seed", "1", "--report", "junit",
                           "--report-junit-path", str(ARTIFACTS / report)],
                          capture_output=True, text=True, timeout=900)


def test_serve_api_contract(onnx_model):
    with digitkit_server("serve", str(onnx_model), "--token", TOKEN, tries=120) as url:
        out = schemathesis(url, "schemathesis-serve.xml")
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def test_teach_api_contract(onnx_model, tmp_path):
    with digitkit_server("teach", "--workspace", str(tmp_path / "ws"), "--init", str(onnx_model.parent),
                         "--token", TOKEN) as url:
        out = schemathesis(url, "schemathesis-teach.xml")
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
