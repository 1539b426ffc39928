"""The ``hwnas`` command line.

Bad input never shows a traceback: every error the user can cause becomes one
line on stderr (``hwnas: error: ...``) and exit code 2.

Each module of this package holds a group of commands and registers them with
``add_commands(sub, add)``; :data:`COMMAND_MODULES` lists them in the order
``hwnas --help`` shows them. A new group is one module plus one line there.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from latency_tables.errors import LatencyTableError
from nas.errors import NasError
from searchspace import SearchSpaceError
from service.errors import ServiceError

__all__ = ["COMMAND_MODULES", "EXIT_USAGE", "AddCommand", "CliError", "build_parser", "main", "print_json"]

EXIT_USAGE = 2

#: the command groups, one module each, registered in this order
COMMAND_MODULES = (
    "service.cli.catalog",  # spaces, space show/sample, known, describe, export
    "service.cli.lut",  # lut build/validate/list/show/export-kit/import, latency
    "service.cli.nas",  # datasets, proxies, score, train
    "service.cli.search",  # search (local, without the service)
    "service.cli.serve",  # serve, worker, db upgrade
    "service.cli.keys",  # keys create/list/revoke
    "service.cli.client",  # submit, jobs, status, pareto, download, cancel (against a server)
)

#: ``add(name, func, help)``: a top-level command running ``func(args)``; returns its parser for the arguments
AddCommand = Callable[[str, Callable[[argparse.Namespace], None], str], argparse.ArgumentParser]


class CliError(Exception):
    """A user error with a message fit for one line."""


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwnas", description="Hardware-aware neural architecture search.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], None], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(sub, add)
    return parser


_format_warning = warnings.formatwarning


def _one_line_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    """hwnas' own warnings (a table from another host, ...) as one line for a person, not a source location."""
    if category is UserWarning:
        return f"hwnas: warning: {message}\n"
    return _format_warning(message, category, filename, lineno, line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # how warnings read; where they go stays Python's (or pytest's)
    formatted, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        args.func(args)
    except (SearchSpaceError, LatencyTableError, NasError, ServiceError, CliError) as exc:
        # one line: "heading:\n field: problem\n ..." reads "heading: field: problem; ..."
        message = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()).replace(":; ", ": ")
        print(f"hwnas: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("hwnas: interrupted (a search continues with --resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `hwnas known | head`
        sys.stderr.close()
        return 0
    except OSError as exc:
        print(f"hwnas: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_USAGE
    finally:
        warnings.formatwarning = formatted
    return 0
