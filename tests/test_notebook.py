"""The tutorial notebook runs top to bottom (quick mode) and ends with the numbers it promises."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "keras_mnist.ipynb"


def test_notebook_executes(tmp_path, monkeypatch):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # committed clean
    monkeypatch.setenv("DIGITKIT_QUICK", "1")
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    last = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    assert "test accuracy: 0." in last
    assert "verification: agreement" in last and "PASS" in last
