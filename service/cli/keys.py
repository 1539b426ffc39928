"""``hwnas keys create|list|revoke``: API keys, written straight to the service database (an admin's tool)."""

from __future__ import annotations

import argparse
from typing import Any

from service.cli import AddCommand, print_json
from service.cli.tables import render_table


def _url() -> str:
    from service.cli.serve import load_settings
    from service.db import upgrade

    url: str = load_settings().database_url
    upgrade(url)
    return url


def cmd_keys_create(args: argparse.Namespace) -> None:
    from service.db import session_scope
    from service.security import create_key

    with session_scope(_url()) as session:
        new = create_key(session, user=args.user or args.name, name=args.name)
    if args.json:
        print_json({"key": new.key, "prefix": new.prefix, "user": new.user, "name": new.name})
        return
    print(new.key)
    print(
        f"(API key {new.prefix} for user {new.user!r}: shown once, only its hash is stored; send it as "
        "'Authorization: Bearer <key>' or set HWNAS_API_KEY)"
    )


def cmd_keys_list(args: argparse.Namespace) -> None:
    from service.db import session_scope
    from service.security import list_keys

    with session_scope(_url()) as session:
        rows = [(k.prefix, user, k.name, k.created, k.last_used, k.revoked) for k, user in list_keys(session)]
    if args.json:
        print_json(
            [
                {
                    "prefix": p,
                    "user": u,
                    "name": n,
                    "created": str(c),
                    "last_used": str(lu) if lu else None,
                    "revoked": str(r) if r else None,
                }
                for p, u, n, c, lu, r in rows
            ]
        )
        return
    fmt = "%Y-%m-%d %H:%M"
    print(
        render_table(
            ["prefix", "user", "name", "created", "last used", "revoked"],
            [
                [p, u, n, c.strftime(fmt), lu.strftime(fmt) if lu else "-", r.strftime(fmt) if r else "-"]
                for p, u, n, c, lu, r in rows
            ],
        )
    )


def cmd_keys_revoke(args: argparse.Namespace) -> None:
    from service.db import session_scope
    from service.security import revoke_key

    with session_scope(_url()) as session:
        key = revoke_key(session, args.prefix)
        print(f"revoked API key {key.prefix} ({key.name})")


def add_commands(sub: Any, add: AddCommand) -> None:
    p = sub.add_parser(
        "keys",
        help="API keys of the service (in HWNAS_DATABASE_URL)",
        description="API keys of the service, written to the database in HWNAS_DATABASE_URL",
    )
    keys = p.add_subparsers(dest="keys_command", required=True, metavar="SUBCOMMAND")
    c = keys.add_parser("create", help="create a key and print it once")
    c.add_argument("--name", required=True, help="what the key is for (e.g. laptop)")
    c.add_argument("--user", help="the user it acts as (default: the name); created if new")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_keys_create)
    ls = keys.add_parser("list", help="keys with their prefix, user and last use (never the key)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_keys_list)
    r = keys.add_parser("revoke", help="revoke a key by its prefix")
    r.add_argument("prefix")
    r.set_defaults(func=cmd_keys_revoke)
