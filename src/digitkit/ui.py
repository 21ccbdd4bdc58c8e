"""Terminal output: one Rich console, and a progress bar that degrades to nothing off a TTY."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape  # noqa: F401  (file names and labels printed as they are, never as markup)
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


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
