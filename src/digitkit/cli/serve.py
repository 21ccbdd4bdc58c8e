"""`digitkit serve` and `digitkit teach`: the servers, and the flags and messages they share."""

from __future__ import annotations

import re

from digitkit import DigitkitError
from digitkit.cli.base import Command, command, escape


def server_arguments(parser) -> None:
    """The flags `serve` and `teach` share: where to listen and who may use the server."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1: this machine only; 0.0.0.0: your network, "
                             "with a token)")
    parser.add_argument("--port", type=int, default=8000, help="port, 1-65535 (default 8000)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a host name clients may use besides IP addresses and localhost (repeatable)")
    parser.add_argument("--token", help="the token clients must present (default: a random one whenever --host is "
                                        "not loopback; also read from $DIGITKIT_TOKEN); on loopback, none unless given")
    parser.add_argument("--no-token", action="store_true",
                        help="no token on a network address: anyone who can reach the port may use the server")


def server_token(args, what_anyone_can_do: str) -> str | None:
    """The token the server will require (None: none), with a warning when the network gets in without."""
    from digitkit.serve.access import choose_token, is_loopback
    from digitkit.ui import err_console

    token = choose_token(args.host, args.token, args.no_token)
    if token is None and not is_loopback(args.host):
        err_console.print(f"[bold yellow]warning:[/] --no-token on {escape(args.host)}: anyone who can reach port "
                          f"{args.port} on your network can {what_anyone_can_do}.", soft_wrap=True)
    return token


def announce(args, token: str | None) -> None:
    """The URLs to open (each address the server can be reached at, with its token), and a QR code
    of the first for a phone's camera when the server is open to the network."""
    from digitkit.serve.access import is_loopback, qr_code, urls
    from digitkit.ui import console

    links = urls(args.host, args.port, token)
    if is_loopback(args.host):
        console.print(f"Open [bold]{escape(links[0])}[/] (API docs: {escape(links[0].split('?')[0])}docs)",
                      soft_wrap=True)
        return
    console.print("Open from your phone or another computer on this network (scan the code with the camera):",
                  soft_wrap=True)
    for link in links[:-1]:
        console.print(f"  [bold]{escape(link)}[/]", soft_wrap=True)
    console.print(f"On this machine: {escape(links[-1])}", soft_wrap=True)
    if len(links) > 1:
        console.out(qr_code(links[0]), highlight=False)
    if token:
        console.print("Scripts send the header [bold]Authorization: Bearer TOKEN[/] with the token from the URL.",
                      soft_wrap=True)


@command
class Serve(Command):
    name = "serve"
    help = "Serve the drawing web app and the HTTP API (predictions with onnxruntime, or LiteRT for a .tflite)."
    examples = """
        examples:
          digitkit serve                                  # newest run in ./runs, http://127.0.0.1:8000
          digitkit serve runs/first --port 8080
          digitkit serve runs/first/MNISTClassifier.onnx --host 0.0.0.0   # your phone: a URL with a token, a QR code
          digitkit serve runs/first/MNISTClassifier-int8.tflite           # what an Android app would run
        """

    @staticmethod
    def arguments(parser):
        parser.add_argument("model", nargs="?", help="run folder, .keras, .onnx or .tflite (default: the newest run in ./runs)")
        parser.add_argument("--workers", type=int, default=1,
                            help="server processes (default 1; one per core for load; Linux only)")
        server_arguments(parser)

    @staticmethod
    def run(args) -> int:
        from digitkit.runs import Run
        from digitkit.predict import served_model_path
        from digitkit.serve.server import check_port, load_served_model, run_server
        from digitkit.ui import console

        check_port(args.port, args.workers)
        onnx_path = served_model_path(args.model if args.model is not None else Run.newest().path)
        classifier = load_served_model(onnx_path)  # before binding: a bad model fails first
        token = server_token(args, "use the model and read what it answers")

        def ready():
            console.print(f"Serving {escape(classifier.name)} ({escape(onnx_path)}). Ctrl-C stops.")
            announce(args, token)

        run_server(onnx_path, args.host, args.port, args.workers, set(args.allow_host), on_ready=ready, token=token,
                   classifier=classifier)
        return 0


@command
class Teach(Command):
    name = "teach"
    help = "Teach a model your own drawings in the browser: name classes, draw examples, train, try, download."
    examples = """
        examples:
          digitkit teach                                    # ./teach/, starting from the newest run in ./runs
          digitkit teach --workspace shapes --init runs/first --port 8080   # ShapesClassifier.mlpackage
          digitkit teach --name Emoji                       # EmojiClassifier.mlpackage
          digitkit teach --host 0.0.0.0                     # draw on your phone: a URL with a token, a QR code
          digitkit train --data teach/data --name mine      # later: the same drawings from the command line
        """

    @staticmethod
    def arguments(parser):
        parser.add_argument("--workspace", default="teach", help="folder for the drawings and the runs (default: teach)")
        parser.add_argument("--init", help="run to start from (default: the newest run in ./runs, if any)")
        parser.add_argument("--name", help="the model's name: NAME → NAMEClassifier.mlpackage (default: the workspace's "
                                           "folder name)")
        server_arguments(parser)

    @staticmethod
    def run(args) -> int:
        from digitkit.runs import Run
        from digitkit.serve.server import check_port, run_teach
        from digitkit.ui import console

        check_port(args.port)
        init = args.init
        if init is None:
            try:
                init = str(Run.newest().path)
            except DigitkitError:
                console.print("No run in ./runs to start from: models will be trained from scratch "
                              "(give --init RUN to start from a digit model; it needs fewer drawings).")
        else:
            Run.open(init)
        token = server_token(args, "add and delete classes and drawings, train, and download the models and drawings")

        def ready():
            start = f", starting from {escape(init)}" if init else ""
            console.print(f"Teach page for the workspace {escape(args.workspace)}{start}. Ctrl-C stops.")
            announce(args, token)

        if args.name is not None and not re.search(r"[A-Za-z0-9]", args.name):
            raise DigitkitError(f"--name {args.name!r} has no letter or digit to name a model with")
        run_teach(args.workspace, init, args.host, args.port, set(args.allow_host), on_ready=ready, model_name=args.name,
                  token=token)
        return 0
