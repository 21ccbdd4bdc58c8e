import dataclasses
import gzip

import numpy as np
import pytest

from digitkit import DigitkitError
from digitkit.data import IdxFormatError, load_dataset, read_idx, split_validation, write_idx
from digitkit.data import datasets


def test_shipped_mnist_has_expected_shapes(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_train.dtype == np.uint8
    assert mnist.y_train.shape == (60000,)
    assert mnist.x_test.shape == (10000, 28, 28)
    assert np.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist.y_train[:5].tolist() == [5, 0, 4, 1, 9]  # canonical order


@pytest.mark.parametrize("name", ["a.gz", "a"])
def test_round_trip_gzip_and_raw(tmp_path, rng, name):
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / name, images)
    assert np.array_equal(read_idx(tmp_path / name, 3, (None, 28, 28)), images)


def _header(ndim, dims, dtype=0x08):
    return bytes([0, 0, dtype, ndim]) + np.asarray(dims, ">u4").tobytes()


@pytest.mark.parametrize(
    "blob, ndim, message",
    [
        (b"", 3, "bad magic"),
        (b"PK\x03\x04" + b"\0" * 100, 3, "bad magic"),
        (_header(3, [2, 28, 28]) + b"\0" * 100, 3, "truncated"),
        (_header(3, [1, 28, 28]) + b"\0" * 785, 3, "trailing bytes"),
        (_header(1, [10]) + b"\0" * 10, 3, "has 1 dimension(s), expected 3"),
        (_header(3, [1, 28, 28], dtype=0x0D) + b"\0" * 784 * 4, 3, "not unsigned byte"),
        (_header(3, [1, 32, 32]) + b"\0" * 1024, 3, "dimension 1 is 32, expected 28"),
        (_header(3, [1])[:6], 3, "truncated header"),
    ],
)
def test_corrupt_files_are_named_and_explained(tmp_path, blob, ndim, message):
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(blob)
    with pytest.raises(IdxFormatError) as err:
        read_idx(path, ndim, (None, 28, 28))
    assert str(path) in str(err.value) and message in str(err.value)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(_header(1, [1000]) + bytes(1000))[:-20])
    with pytest.raises(IdxFormatError, match="corrupt or truncated gzip"):
        read_idx(path, 1)


def test_missing_file(tmp_path):
    with pytest.raises(IdxFormatError, match="file not found"):
        read_idx(tmp_path / "nope.gz", 1)


def test_data_dir_with_subfolder_and_env(tmp_path, tiny_mnist_dir, monkeypatch):
    data = load_dataset("mnist", tiny_mnist_dir)
    assert data.x_train.shape == (1200, 28, 28) and data.x_test.shape == (300, 28, 28)
    monkeypatch.setenv("DIGITKIT_DATA_DIR", str(tiny_mnist_dir))
    assert load_dataset("mnist").source == str(tiny_mnist_dir)


def test_data_dir_without_files_says_what_is_needed(tmp_path):
    with pytest.raises(DigitkitError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", tmp_path)


def test_label_count_mismatch(tmp_path, tiny_mnist_dir):
    for f in tiny_mnist_dir.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(299, np.uint8))
    with pytest.raises(DigitkitError, match="300 images but .* 299 labels"):
        load_dataset("mnist", tmp_path)


def test_offline_without_copy_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("DIGITKIT_DATA_DIR", raising=False)
    # No shipped copy, and an unroutable mirror standing in for "no network".
    offline = dataclasses.replace(datasets.SPECS["mnist"], system_dirs=(), mirrors=("http://127.0.0.1:9/",))
    monkeypatch.setitem(datasets.SPECS, "mnist", offline)
    with pytest.raises(DigitkitError) as err:
        load_dataset("mnist")
    assert str(tmp_path / "digitkit" / "mnist") in str(err.value)
    assert not any((tmp_path / "digitkit" / "mnist").glob("*.gz"))  # nothing half-written


def test_download_verifies_checksum(tmp_path, monkeypatch, tiny_mnist_dir):
    """A local HTTP 'mirror' serving the wrong bytes is rejected; the right bytes are kept."""
    import hashlib
    import http.server
    import threading

    served = tmp_path / "mirror"
    served.mkdir()
    for f in tiny_mnist_dir.iterdir():
        data = f.read_bytes()
        (served / (f.name if f.suffix == ".gz" else f.name + ".gz")).write_bytes(
            data if f.suffix == ".gz" else gzip.compress(data))
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(served))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        mirror = f"http://127.0.0.1:{server.server_port}/"
        md5 = {k: hashlib.md5((served / (s + ".gz")).read_bytes()).hexdigest() for k, s in datasets.FILES.items()}
        spec = datasets.DatasetSpec("mnist", tuple("0123456789"), (mirror,), md5, ())
        monkeypatch.setitem(datasets.SPECS, "mnist", spec)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.delenv("DIGITKIT_DATA_DIR", raising=False)
        assert load_dataset("mnist").x_train.shape == (1200, 28, 28)

        bad = dict(md5, train_labels="0" * 32)
        monkeypatch.setitem(datasets.SPECS, "mnist", datasets.DatasetSpec("mnist", tuple("0123456789"), (mirror,), bad, ()))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache2"))
        with pytest.raises(DigitkitError, match="checksum mismatch"):
            load_dataset("mnist")
    finally:
        server.shutdown()


def test_fashion_mnist_if_installed():
    try:
        data = load_dataset("fashion-mnist", download=False)
    except DigitkitError:
        pytest.skip("fashion-mnist not installed (apt-get install dataset-fashion-mnist)")
    assert data.x_test.shape == (10000, 28, 28) and data.class_names[9] == "Ankle boot"


def test_validation_split_is_seeded_and_disjoint(mnist):
    x = np.arange(100)
    y = np.arange(100)
    a = split_validation(x, y, 20, seed=1)
    b = split_validation(x, y, 20, seed=1)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert len(a[2]) == 20 and len(a[0]) == 80
    assert not set(a[0]) & set(a[2])
    assert len(split_validation(x, y, 0.1)[2]) == 10
    with pytest.raises(DigitkitError):
        split_validation(x, y, 100)


def test_unknown_dataset():
    with pytest.raises(DigitkitError, match="unknown dataset"):
        load_dataset("cifar")
