"""``hwnas serve``: the API and its dashboard on one machine."""

from __future__ import annotations

import argparse
from typing import Any

from service.cli import AddCommand


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from service.app import create_app

    print(f"hwnas: serving on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")


def add_commands(sub: Any, add: AddCommand) -> None:
    p = add("serve", cmd_serve, "run the service and its dashboard")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
