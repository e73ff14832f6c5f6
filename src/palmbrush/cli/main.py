"""The `palmbrush` command: a thin root that dispatches to one module per subcommand.

Subcommand modules import their heavy dependencies inside run(), so `palmbrush --help` stays
fast. User mistakes (PalmbrushError) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = [
    "demo",
    "stylize",
    "camera",
    "deploy",
    "styles",
    "sheet",
    "inspect",
    "bench",
    "env",
    "models",
    "train",
    "export",
    "lab",
]


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported in one line (no usage block) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from palmbrush import __version__

    parser = Parser(
        prog="palmbrush", description="Real-time style transfer on its own ONNX runtime."
    )
    parser.add_argument("--version", action="version", version=f"palmbrush {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"palmbrush.cli.{name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from palmbrush.errors import PalmbrushError

    _log_to_stderr()
    try:
        return int(args.run(args) or 0)
    except PalmbrushError as exc:
        print(f"palmbrush: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return 0
    except OSError as exc:  # the system refused a path: a name too long, no permission...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"palmbrush: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("palmbrush: interrupted", file=sys.stderr)
        return 130


def _log_to_stderr() -> None:
    """palmbrush's notes (an engine still compiling, say) as "palmbrush: ..." lines."""
    import logging

    logger = logging.getLogger("palmbrush")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("palmbrush: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


if __name__ == "__main__":
    sys.exit(main())
