"""The tutorial notebook runs top to bottom (quick mode) and ends with the numbers it promises; its
first part is plain Keras (no digitkit), its second digitkit."""

import ast
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "keras_mnist.ipynb"
MNIST = Path(__file__).parents[1] / "src" / "digitkit" / "data" / "mnist"
# Part 1's libraries: Keras, NumPy, matplotlib, coremltools (and torch.export, the bridge from a
# Keras 3 model on the torch backend to coremltools), with the standard library.
PART_ONE_ALLOWED = {"keras", "numpy", "matplotlib", "coremltools", "torch", "gzip", "os", "pathlib"}


def test_part_one_uses_keras_not_digitkit():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    part_two = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "markdown" and "# Part 2" in c.source)
    imported = set()
    for cell in notebook.cells[:part_two]:
        if cell.cell_type == "code":
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Import):
                    imported |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom):
                    imported.add(node.module.split(".")[0])
    assert imported <= PART_ONE_ALLOWED, imported
    source = "\n".join(c.source for c in notebook.cells[:part_two])
    for shown in ("keras.Sequential", "Conv2D", "to_categorical", "/ 255", ".compile(", ".fit(", ".evaluate(",
                  "ct.convert(", "scale=1 / 255", "ClassifierConfig", "Dropout", "softmax"):
        assert shown in source, shown


def test_notebook_executes_from_any_folder_of_the_repository(tmp_path, monkeypatch):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # committed clean
    monkeypatch.setenv("DIGITKIT_QUICK", "1")
    monkeypatch.delenv("DIGITKIT_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "jax")  # the notebook must insist on torch itself
    # Opened two folders below a checkout's root (only the data is needed there), not in notebooks/.
    (tmp_path / "src" / "digitkit").mkdir(parents=True)
    (tmp_path / "src" / "digitkit" / "data").symlink_to(MNIST.parent)
    where = tmp_path / "somewhere" / "else"
    where.mkdir(parents=True)
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(where)}}).execute()
    first = "".join(o.get("text", "") for o in notebook.cells[2].outputs)
    assert f"data from {tmp_path / 'src' / 'digitkit' / 'data' / 'mnist'}" in first
    last = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    part_one = re.search(r"part 1 \(Keras by hand\): test accuracy ([0-9.]+); raw pixels ([0-9.]+)", last)
    assert part_one and float(part_one.group(1)) >= 0.95, last
    assert float(part_one.group(2)) < float(part_one.group(1))  # the classic mistake costs accuracy
    assert "test accuracy: 0." in last
    assert "verification: agreement" in last and "PASS" in last
    unscaled = next(c for c in notebook.cells if c.cell_type == "code" and "unscaled" in c.source)
    text = "".join(o.get("text", "") for o in unscaled.outputs)
    sure = [float(v) for v in re.findall(r"mean top probability ([0-9.]+)", text)]
    assert len(sure) == 2 and sure[1] > sure[0]  # what the text after it says: surer, and wrong more often
    conversion = next(c for c in notebook.cells if c.cell_type == "code" and "ct.convert(" in c.source)
    outputs = "".join(o.get("text", "") for o in conversion.outputs)
    assert "'classLabel': 'The most likely digit'" in outputs and "The probability of each digit" in outputs
    assert (where / "MNISTClassifier.mlpackage").is_dir()
