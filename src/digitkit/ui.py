"""Terminal output: one Rich console, and a progress bar that degrades to nothing off a TTY."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape  # noqa: F401  (file names and labels printed as they are, never as markup)
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

# soft_wrap: a line is never broken to fit 80 columns when the output is a file or a pipe (a log).
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def number(value: float, digits: int = 4) -> str:
    """A number to ``digits`` decimals, never "-0.0000" (a sum that rounded a hair below zero)."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


@contextmanager
def epoch_progress(description: str, total: int, disable: bool = False):
    """Yields ``advance()``; shows a transient bar on a terminal."""
    if disable or not console.is_terminal:
        yield lambda: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)


@contextmanager
def item_progress(description: str, disable: bool = False):
    """Yields ``update(done, total)``; shows a transient bar on a terminal (reading many files)."""
    if disable or not console.is_terminal:
        yield lambda done, total: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(escape(description), total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)
