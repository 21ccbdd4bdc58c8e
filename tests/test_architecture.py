"""The package reads as the pipeline: every module imports only from stages below it (lazy imports
inside functions included), so there are no import cycles. docs/architecture.md explains the order."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "src" / "digitkit"

# Lowest first. A module may import from its own stage and from the stages before it.
STAGES = [
    ["__init__", "deps", "ui", "files"],  # foundations: errors, quiet imports, terminal output, safe writes
    ["data"],  # 1: IDX files, datasets, image normalisation, synthetic handwriting
    ["models"],  # 2: architectures
    ["runs"],  # run folders on disk
    ["inference"],  # device, tensors, batched prediction
    ["coreml"],  # a Core ML runtime for any OS
    ["litert_metadata"],  # digitkit's metadata in a .tflite file, written and read
    ["classifier"],  # one shape for a loaded model, any format
    ["plots"],
    ["report"],  # scores and pictures of a model on a labelled set
    ["train"],  # 3
    ["evaluate"],  # 4
    ["export"],  # 5
    ["verify"],  # 6
    ["predict"],  # 7
    ["teach"],  # 8
    ["serve"],  # 9
    ["cli", "__main__"],
]
RANK = {name: rank for rank, names in enumerate(STAGES) for name in names}


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "digitkit":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: use absolute imports (digitkit.…), so stages are plain to see")
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            if node.module == "digitkit":
                yield from (f"digitkit.{alias.name}" for alias in node.names if f"digitkit.{alias.name}" in MODULES)


MODULES = {f"digitkit.{p.stem if p.suffix else p.name}" for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}


def test_every_module_belongs_to_a_stage():
    stages = {p.stem if p.suffix == ".py" else p.name for p in PACKAGE.iterdir()
              if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert stages <= set(RANK), f"add to STAGES: {sorted(stages - set(RANK))}"


def test_imports_only_go_down():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        here = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        for target in imports(path):
            there = stage_of(target)
            if there is not None and there != here and RANK[there] > RANK[here]:
                upward.append(f"{relative} imports {target} ({there} is above {here})")
    assert not upward, "\n".join(upward)
