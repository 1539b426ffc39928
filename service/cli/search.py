"""``hwnas search CONFIG.yaml``: run a search locally, without the service (SQLite + local Ray by default).

Before the first trial, the search chooses each latency profile's table and,
on first use, builds this host's (progress on stderr); a latency predicted
from a table of another host is marked in the front and warned about, with
the command that builds this host's table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from service.cli import AddCommand
from service.cli.tables import fmt_value, render_table


def cmd_search(args: argparse.Namespace) -> None:
    from nas.config import SearchConfig
    from nas.results import SearchProgress, count_failed, front_trials, save_result
    from nas.search import Search
    from nas.table_choice import TableEvent
    from service.cli.progress import ProgressBar

    config = SearchConfig.from_file(args.config)
    if args.workers or args.trials:
        data = config.model_dump(mode="json")
        if args.workers:
            data["workers"] = args.workers
        if args.trials:
            data["budget"]["trials"] = args.trials
        config = SearchConfig.parse(data, args.config)
    out = Path(args.out or Path("hwnas-runs") / config.study_name())
    out.mkdir(parents=True, exist_ok=True)
    storage = args.storage or f"sqlite:///{(out / 'search.db').resolve()}"
    bar = ProgressBar(f"search {config.study_name()}", stream=sys.stderr)

    def progress(p: SearchProgress) -> None:
        if args.json:
            return
        best = " ".join(f"{k}={fmt_value(v)}" for k, v in p.best.items())
        hv = f" hv={p.hypervolume:.4g}" if p.hypervolume is not None else ""
        bar(p.done, p.budget_trials or max(p.done, 1), f"front {p.front_size}{hv} best {best}")

    table_bars: dict[tuple[str, str], ProgressBar] = {}

    def on_table(event: TableEvent) -> None:
        if args.json:
            return
        if event.finished:
            print(event.line(), file=sys.stderr)
            return
        key = (event.profile, event.what)
        if key not in table_bars:
            table_bars[key] = ProgressBar(f"latency table {event.profile}: {event.what}", stream=sys.stderr)
        table_bars[key](event.done, event.total, "")

    result = Search(config, storage, progress=progress, on_table=on_table).run(resume=args.resume)
    save_result(result, out)
    if args.json:
        print(result.to_json())
        return
    front = front_trials(result)
    names = [o["metric"] for o in result.objectives]
    others = sorted({m for t in front for m in t.metrics} - set(names))
    foreign = {m for c in result.latency_tables.values() if c.get("foreign") for m in c.get("metrics", [])}
    print()
    print(
        render_table(
            ["trial", "arch_id", *[f"{n} (foreign table)" if n in foreign else n for n in [*names, *others]]],
            [
                [t.number, t.arch_id, *[fmt_value(t.metrics.get(n)) for n in [*names, *others]]]
                for t in sorted(front, key=lambda t: t.metrics.get(names[0]) or 0)
            ],
            set(range(2, 2 + len(names) + len(others))),
        )
    )
    failed = count_failed(result)
    hv = f", hypervolume {result.hv_history[-1][1]:.4g}" if result.hv_history else ""
    print(
        f"\n{len(front)} nets on the front of {len(result.trials)} trials ({failed} failed){hv}; {result.elapsed:.0f} s"
    )
    for note in result.notes:
        print(f"note: {note}")
    for warning in result.latency_warnings():
        print(f"warning: {warning}")
    print(f"results: {out}/result.json, trials.csv, front.json; study in {storage}")


def add_commands(sub: Any, add: AddCommand) -> None:
    p = add("search", cmd_search, "run a search from a YAML config (SQLite and a local Ray by default)")
    p.add_argument("config", help="search config (YAML)")
    p.add_argument("--resume", action="store_true", help="continue the config's study where it stopped")
    p.add_argument("--storage", help="SQLAlchemy URL of the study (default: search.db in the output folder)")
    p.add_argument("--out", help="output folder (default: hwnas-runs/<study name>)")
    p.add_argument("--workers", type=int, help="override the config's workers")
    p.add_argument("--trials", type=int, help="override the config's trial budget")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
