"""The README and the docs say what the tool does: every `digitkit ...` example in them parses with
today's flags, and the README's one-example-per-command block runs as written on a small run (all
but the ones that train for minutes or start a server, which other tests run)."""

import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitkit.cli import build_parser, main

REPO = Path(__file__).parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "apps" / "ios" / "README.md"]


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def examples(text: str) -> list[list[str]]:
    """Each `digitkit ...` command in the text's bash blocks, as its arguments (comments dropped,
    continued lines joined, commands joined with && taken one by one)."""
    found = []
    for block in bash_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words[:1] == ["digitkit"]:
                    found.append(words[1:])
    return found


ALL = [(doc.relative_to(REPO).as_posix(), argv) for doc in DOCUMENTS for argv in examples(doc.read_text())]


def test_the_documents_have_examples_of_every_command():
    commands = {argv[0] for _, argv in ALL if argv and not argv[0].startswith("-")}
    assert commands >= {"train", "evaluate", "export", "verify", "predict", "serve", "teach", "info"}, commands


@pytest.mark.parametrize("where, argv", ALL, ids=[f"{w}: {' '.join(a)[:60]}" for w, a in ALL])
def test_every_example_parses_with_todays_flags(where, argv):
    chosen = next((a for a in argv if not a.startswith("-")), None)
    try:
        build_parser(chosen).parse_args(argv)
    except SystemExit as stop:
        assert stop.code == 0, f"{where}: digitkit {' '.join(argv)} does not parse"


def readme_commands() -> list[list[str]]:
    section = (REPO / "README.md").read_text().split("## Commands", 1)[1]
    return examples(bash_blocks(section)[0].join(["```bash\n", "```"]))


def test_the_readme_commands_run_as_written(tmp_path, trained_run, mnist, monkeypatch, capsys):
    """In a folder with a run called first, an image of a digit and one of a number: evaluate,
    export, verify, predict, read, info."""
    shutil.copytree(trained_run.path, tmp_path / "runs" / "first")
    Image.fromarray(255 - mnist.x_test[0]).resize((112, 112)).save(tmp_path / "my_digit.png")
    line = np.full((40, 130), 255, np.uint8)
    for i in range(3):
        line[6:34, 10 + 40 * i : 38 + 40 * i] = 255 - mnist.x_test[i]
    Image.fromarray(line).save(tmp_path / "number.png")
    monkeypatch.chdir(tmp_path)
    printed = {}
    for argv in readme_commands():
        if argv[0] in ("train", "serve", "teach"):  # minutes of training, or a server: their own tests
            continue
        code = main(argv)
        printed[argv[0]] = capsys.readouterr().out
        assert code == 0, f"digitkit {' '.join(argv)}: {printed[argv[0]]}"
    assert list(printed) == ["evaluate", "export", "verify", "predict", "read", "info"]
    assert "number.png" in printed["read"]
    assert (tmp_path / "runs" / "first" / "MNISTClassifier.mlpackage").is_dir()
    row = next(line for line in printed["predict"].splitlines() if "my_digit.png" in line)
    assert re.search(rf"│\s*{mnist.y_test[0]}\s*│", row), row  # the digit, read with the newest run
