"""The tutorial notebook runs top to bottom (quick mode) and ends with the numbers it promises; its
first part is plain Keras (no digitkit), its second digitkit."""

import ast
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "keras_mnist.ipynb"
MNIST = Path(__file__).parents[1] / "data" / "mnist"
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


def test_notebook_executes(tmp_path, monkeypatch):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # committed clean
    monkeypatch.setenv("DIGITKIT_QUICK", "1")
    monkeypatch.setenv("DIGITKIT_DATA_DIR", str(MNIST))
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    last = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    assert "part 1 (Keras by hand): test accuracy 0." in last
    assert "test accuracy: 0." in last
    assert "verification: agreement" in last and "PASS" in last
    unscaled = next(c for c in notebook.cells if c.cell_type == "code" and "unscaled" in c.source)
    text = "".join(o.get("text", "") for o in unscaled.outputs)
    assert "raw 0..255 pixels" in text
