"""The ``digitkit`` command: a thin layer over the Python API (each command calls one function).

One module per command (its help, examples, arguments and what it runs, registered once with
``@command``). Only the command being run has its arguments built, so ``digitkit --version`` and
``digitkit --help`` do not import torch or Keras.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from digitkit import ConfigError, DigitkitError, __version__
from digitkit.cli.base import COMMANDS, escape
from digitkit.cli import train, evaluate, export, verify, predict, read, serve, info  # noqa: F401,E402  (they register)


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the arguments of the ``chosen`` command only (the others' stay unbuilt)."""
    parser = argparse.ArgumentParser(
        prog="digitkit",
        description="Train a handwritten-digit classifier, export it to Core ML / ONNX, verify it, try it.",
        epilog="Start with:  digitkit train   then   digitkit evaluate runs/<name>",
    )
    parser.add_argument("--version", action="version", version=f"digitkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cls in COMMANDS.items():
        sub = commands.add_parser(name, help=cls.help, description=cls.help, epilog=textwrap.dedent(cls.examples),
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(func=cls.run)
        if name == chosen:
            cls.arguments(sub)
    return parser


def _flag(setting: str) -> str:
    return "--" + setting.replace("_", "-")


def main(argv: list[str] | None = None) -> int:
    from digitkit.deps import keras_extras_skipped

    with keras_extras_skipped():
        code = _main(sys.argv[1:] if argv is None else argv)
    if argv is None:  # run from the shell, not called from Python
        _exit_without_teardown(code)
    return code


def _exit_without_teardown(code: int) -> None:
    """End a command that loaded torch at once: everything it wrote is closed and its exit handlers
    run, but the interpreter's teardown of torch and Keras (1-1.5 s after a training) is skipped."""
    import atexit
    import threading

    if "torch" not in sys.modules or threading.active_count() > 1 or sys.getprofile() or sys.gettrace():
        return  # nothing to save, a thread still working, or a profiler or debugger that reports at exit
    atexit._run_exitfuncs()  # what a normal exit runs first (temporary folders, logging, torch's own)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): a normal exit would not report it either
            pass
    os._exit(code)


def _main(argv: list[str]) -> int:
    # coremltools draws a tqdm bar for each of its internal conversion passes; digitkit shows its own
    # progress. tqdm reads this when first imported, and a user's own setting wins.
    os.environ.setdefault("TQDM_DISABLE", "1")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    try:
        args = build_parser(chosen).parse_args(argv)
    except DigitkitError as err:  # building a command's flags can need its data (e.g. the choices)
        return _fail(err)
    if args.command is None:
        build_parser().print_help()
        return 2
    args.argv = argv
    try:
        return args.func(args)
    except DigitkitError as err:
        return _fail(err)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _fail(err: DigitkitError) -> int:
    from digitkit.ui import err_console

    message = f"{_flag(err.setting)} {err.message}" if isinstance(err, ConfigError) else str(err)
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return 2
