import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from digitkit.serve import MAX_BODY_BYTES, create_app, load_served_model, served_model_path


@pytest.fixture(scope="module")
def client(onnx_model):
    return TestClient(create_app(load_served_model(served_model_path(onnx_model))))


def png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def scan(mnist, i=0):
    big = Image.fromarray(255 - mnist.x_test[i]).resize((140, 140), Image.Resampling.BICUBIC)
    return np.asarray(big)


def test_health_and_model(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/api/model").json()
    assert info["labels"] == [str(d) for d in range(10)] and info["format"] == "onnx"
    assert 0 <= info["test_accuracy"] <= 1 and "image" in info["input"]


def test_page_and_docs_are_served_without_cdn(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas id=\"pad\"" in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")  # everything from this server
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/predict", "/api/model", "/healthz"} <= set(paths)


def test_predict_upload(client, mnist):
    response = client.post("/api/predict", files={"file": ("d.png", png(scan(mnist)), "image/png")})
    assert response.status_code == 200
    body = response.json()
    assert body["label"] in [str(d) for d in range(10)]
    assert body["confidence"] == pytest.approx(max(body["probabilities"].values()))
    assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert np.asarray(body["normalized"]).shape == (28, 28)


def test_predict_jpeg_upload(client, mnist):
    buffer = io.BytesIO()
    Image.fromarray(scan(mnist, 1)).convert("RGB").save(buffer, "JPEG")
    response = client.post("/api/predict", files={"file": ("d.jpg", buffer.getvalue(), "image/jpeg")})
    assert response.status_code == 200 and response.json()["label"] is not None


def test_predict_pixels_matches_upload(client, mnist):
    by_pixels = client.post("/api/predict", json={"pixels": mnist.x_test[2].tolist()}).json()
    by_upload = client.post("/api/predict", files={"file": ("d.png", png(mnist.x_test[2]), "image/png")}).json()
    assert by_pixels["label"] == by_upload["label"]
    assert by_pixels["probabilities"] == pytest.approx(by_upload["probabilities"], abs=1e-6)
    scaled = client.post("/api/predict", json={"pixels": (mnist.x_test[2] / 255).tolist()}).json()
    assert scaled["label"] == by_pixels["label"]


def test_blank_image_is_a_clear_no_digit_result(client):
    response = client.post("/api/predict", files={"file": ("b.png", png(np.full((50, 50), 255)), "image/png")})
    assert response.status_code == 200
    assert response.json()["label"] is None and "no digit found" in response.json()["message"]
    response = client.post("/api/predict", json={"pixels": [[0] * 28] * 28})
    assert response.status_code == 200 and response.json()["label"] is None


@pytest.mark.parametrize("kwargs, status, message", [
    (dict(content=b"x" * (MAX_BODY_BYTES + 1), headers={"content-type": "image/png"}), 413, "over"),
    (dict(files={"file": ("big.png", b"\0" * (MAX_BODY_BYTES + 10), "image/png")}), 413, "over"),
    (dict(content=b"hello", headers={"content-type": "text/plain"}), 415, "multipart/form-data"),
    (dict(files={"file": ("x.png", b"not an image", "image/png")}), 415, "not a usable image"),
    (dict(files={"other": ("x.png", b"abc", "image/png")}), 422, "field 'file'"),
    (dict(content=b'{"pixels": [1, 2', headers={"content-type": "application/json"}), 422, "malformed JSON"),
    (dict(json={"pixels": [[0] * 28] * 27}), 422, "28 rows of 28"),
    (dict(json={"pixels": [["a"] * 28] * 28}), 422, "28x28 array of numbers"),
    (dict(json={"pixels": [[300] * 28] * 28}), 422, "0 to 255"),
    (dict(json={"image": []}), 422, "expected a JSON object"),
    (dict(json=[1, 2, 3]), 422, "expected a JSON object"),
])
def test_bad_input_never_500(client, kwargs, status, message):
    response = client.post("/api/predict", **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert "Traceback" not in response.text


def test_cross_origin_posts_are_refused(client, mnist):
    """A page of another site may not use the API through the user's browser; the page itself, and
    clients that are no browser (no Origin, no Referer), may."""
    upload = {"files": {"file": ("d.png", png(mnist.x_test[0]), "image/png")}}
    for headers in ({"Origin": "http://evil.example"}, {"Referer": "http://evil.example/x"}, {"Origin": "null"},
                    {"Origin": "http://testserver.evil.example"}):
        response = client.post("/api/predict", headers=headers, **upload)
        assert response.status_code == 403 and "cross-origin" in response.json()["detail"], headers
    assert client.post("/api/predict", headers={"Origin": "http://testserver"}, **upload).status_code == 200
    assert client.post("/api/predict", **upload).status_code == 200
    assert client.get("/api/model", headers={"Origin": "http://evil.example"}).status_code == 200  # reading is safe


def test_a_non_digit_drawing_is_said_to_be_none(client):
    """A verdict on every answer; and the API documents the words the page shows."""
    spec = client.get("/openapi.json").json()
    verdict = spec["components"]["schemas"]["Prediction"]["properties"]["verdict"]
    assert "not a class" in json.dumps(verdict)
    pixels = np.zeros((28, 28))
    pixels[12:16, 12:16] = 255  # a tapped dot
    answer = client.post("/api/predict", json={"pixels": pixels.tolist()}).json()
    assert answer["verdict"] in ("sure", "not sure", "not a class")
    assert answer["sure"] == (answer["verdict"] == "sure")
    if answer["verdict"] == "not a class":
        assert answer["message"] == "That doesn't look like a digit"


def test_missing_model_file(tmp_path):
    from digitkit import DigitkitError

    with pytest.raises(DigitkitError, match="not found"):
        served_model_path(tmp_path / "none.onnx")


def test_taken_port_is_a_clear_error():
    import socket

    from digitkit import DigitkitError
    from digitkit.serve.server import _listening_socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(DigitkitError, match="choose another --port"):
            _listening_socket("127.0.0.1", taken.getsockname()[1])
