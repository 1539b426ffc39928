"""A submitted search config, checked before anything is written: JSON hygiene, validation, server limits.

Errors name the field and what was expected; nothing here touches the database.
"""

from __future__ import annotations

import random
import re
from typing import Any

from pydantic import ValidationError

from nas.config import ConfigError, SearchConfig
from searchspace import SearchSpaceError
from service.errors import InvalidError, LimitError, shown
from service.settings import Settings

_PATH = re.compile(r"[A-Za-z_][\w-]*(\[\d+\])*(\.[A-Za-z_][\w-]*(\[\d+\])*)*")


def field_errors(message: str) -> list[dict[str, str]]:
    """``a.b: msg`` lines (nas/searchspace error style) -> [{field, message}] for problem details.

    A nested spec's lines read ``space: stages[1].depth: msg``: that is field ``space.stages[1].depth``; the
    heading line that announces them (``space: invalid search space (inline spec):``) is no error of its own.
    """
    out = []
    for line in message.splitlines()[1:] or message.splitlines():
        head, sep, rest = line.strip().partition(": ")
        if not sep or " " in head:
            out.append({"field": "", "message": line})
            continue
        if rest.endswith(":"):
            continue
        sub, sep, tail = rest.partition(": ")
        if sep and _PATH.fullmatch(sub):
            head, rest = f"{head}.{sub}", tail
        out.append({"field": head, "message": rest})
    return out


def one_line(message: str) -> str:
    """A validation message (``validate_model``'s heading line, then ``field: message`` lines) on one line, as
    a problem's ``detail`` shows it."""
    return message.replace("\n", "; ").replace(":; ", ": ")


def beyond_blocks(exc: ValidationError) -> str:
    """What a space whose bounds let through a layer no block may have is told, ``exc`` being the error of
    building one of its nets: worded as ``validate_model`` words any validation error (the fields are the
    block's), on one line."""
    from searchspace.validation import describe_validation_error

    return one_line(
        "its nets would have layers no block may have; expected fewer channels, a smaller width multiplier or "
        "expansion ratio:\n" + describe_validation_error(exc)
    )


MAX_DEPTH = 32  # a search config is a few levels deep; far deeper JSON only exhausts the parsers' stacks


def check_json(data: Any) -> None:
    """Refuse what no database or validator should see: NUL characters (PostgreSQL cannot store them) and
    absurd nesting. Iterative, so a deep body cannot exhaust the stack here."""
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidError(
                f"{path}: nested more than {MAX_DEPTH} levels deep; expected a search config", field=path
            )
        if isinstance(value, str) and "\x00" in value:
            raise InvalidError(
                f"{path or 'body'}: contains a NUL character (\\x00); expected text without it", field=path or "body"
            )
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if "\x00" in str(key):
                    raise InvalidError(
                        f"{path or 'body'}: the key {shown(str(key))} contains a NUL character "
                        "(\\x00); expected text without it",
                        field=path or "body",
                    )
                stack.append((where, item, depth + 1))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item, depth + 1) for i, item in enumerate(value))


def parse_config(data: Any, settings: Settings) -> SearchConfig:
    """A submitted SearchConfig, validated and checked against this server's limits (nothing is written)."""
    check_json(data)
    if isinstance(data, dict) and isinstance(data.get("space"), str):
        from searchspace import list_spaces

        if data["space"] not in list_spaces():
            raise InvalidError(
                f"space: unknown built-in space {data['space']!r}; expected one of "
                f"{', '.join(list_spaces())}, or a space spec as a JSON object",
                field="space",
            )
    if isinstance(data, dict) and data.get("ray_address") is not None:
        raise InvalidError("ray_address: set by the server (HWNAS_RAY_ADDRESS), not by a job", field="ray_address")
    if isinstance(data, dict):
        check_table_file(data.get("latency_table"))
    try:
        config = SearchConfig.parse(data, "body")
    except ConfigError as exc:
        raise InvalidError(str(exc)) from None
    check_limits(config, settings)
    return config


def check_table_file(value: Any) -> None:
    """A job names a latency table file only in this server's table folder (never any file the server can read);
    checked before the config is parsed, which would tell whether a file exists."""
    from pathlib import Path

    from latency_tables.table import user_table_dir
    from nas.config import LATENCY_TABLE_MODES

    if not isinstance(value, str) or not value.endswith((".json", ".json.gz")):
        return  # a mode, or what SearchConfig refuses as neither mode nor table file
    folder = user_table_dir().resolve()
    try:
        inside = Path(value).resolve().is_relative_to(folder)
    except (OSError, ValueError):
        inside = False
    if not inside:
        raise LimitError(
            f"latency_table: a job may name table files in {folder} on this server only; "
            f"expected {', '.join(LATENCY_TABLE_MODES)} or a file there",
            field="latency_table",
        )


def check_limits(config: SearchConfig, settings: Settings) -> None:
    budget = config.budget
    if budget.trials is not None and budget.trials > settings.max_trials:
        raise LimitError(
            f"budget.trials: {budget.trials} is over this server's limit of {settings.max_trials} (HWNAS_MAX_TRIALS)",
            field="budget.trials",
        )
    if budget.trials is None and budget.seconds is None:
        raise LimitError("budget: give trials and/or seconds", field="budget")
    if budget.seconds is not None and budget.seconds > settings.max_seconds:
        raise LimitError(
            f"budget.seconds: {budget.seconds:g} is over this server's limit of "
            f"{settings.max_seconds:g} (HWNAS_MAX_SECONDS)",
            field="budget.seconds",
        )
    if config.workers > settings.max_workers:
        raise LimitError(
            f"workers: {config.workers} is over this server's limit of {settings.max_workers} (HWNAS_MAX_WORKERS)",
            field="workers",
        )
    check_dataset(config)
    if config.dataset.path is not None:
        root = (settings.data_dir / "datasets").resolve()
        from pathlib import Path

        if not Path(config.dataset.path).resolve().is_relative_to(root):
            raise LimitError(
                f"dataset.path: a job may only read datasets under {root} on this server", field="dataset.path"
            )
    space = config.load_space()
    if max(space.resolutions) > settings.max_resolution:
        raise LimitError(
            f"space: resolution {max(space.resolutions)} is over this server's limit of "
            f"{settings.max_resolution} (HWNAS_MAX_RESOLUTION)",
            field="space",
        )
    from searchspace.cost import count_cost

    # the largest of a seeded sample: the space's size is a product of choices, its largest net is not enumerable
    rng = random.Random(0)
    try:
        costs = [count_cost(space.sample(rng)) for _ in range(64)]
    except SearchSpaceError as exc:  # a spec that loads but has no net to offer somewhere
        raise InvalidError(f"space: {exc}", field="space") from None
    except ValidationError as exc:  # the spec's bounds let a layer through that no block may be
        raise InvalidError(f"space: {beyond_blocks(exc)}", field="space") from None
    params, macs = max(c.params for c in costs), max(c.macs for c in costs)
    if params > settings.max_params:
        raise LimitError(
            f"space: nets of {params:,} params are over this server's limit of "
            f"{settings.max_params:,} (HWNAS_MAX_PARAMS)",
            field="space",
        )
    if macs > settings.max_macs:
        raise LimitError(
            f"space: nets of {macs:,} MACs are over this server's limit of {settings.max_macs:,} (HWNAS_MAX_MACS)",
            field="space",
        )


def check_dataset(config: SearchConfig) -> None:
    """The dataset section, checked now rather than when the first trial loads it (as DataSpec.load would)."""
    from nas.errors import NasError

    spec = config.dataset
    try:
        source = spec.source()
    except NasError as exc:
        raise InvalidError(f"dataset.name: {exc}", field="dataset.name") from None
    unknown = sorted(set(spec.options) - set(source.options))
    if unknown:
        raise InvalidError(
            f"dataset.options: {', '.join(unknown)} not understood by {spec.name!r}; expected "
            f"{', '.join(source.options) or 'none'}",
            field="dataset.options",
        )
    if source.path == "required" and not spec.path:
        raise InvalidError(
            f"dataset.path: dataset {spec.name!r} needs a path ({source.description})", field="dataset.path"
        )
    if source.path == "none" and spec.path:
        raise InvalidError(f"dataset.path: dataset {spec.name!r} takes no path; expected none", field="dataset.path")
