"""A finished search as files in a folder, and the summaries every caller reports the same way.

``hwnas search``, the job worker and the API all keep a result as the same
three files, so a folder written by one reads the same in the others:
``result.json`` (the whole :class:`~nas.search.SearchResult`), ``trials.csv``
(one row per trial) and ``front.json`` (the Pareto-optimal nets only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nas.search import SearchResult, TrialRecord

__all__ = ["RESULT_FILES", "count_failed", "front_records", "front_trials", "save_result"]

#: the files :func:`save_result` writes, in this order
RESULT_FILES = ("result.json", "trials.csv", "front.json")


def front_trials(result: SearchResult) -> list[TrialRecord]:
    """The trials on the Pareto front, in trial order."""
    return [t for t in result.trials if t.on_front]


def front_records(result: SearchResult) -> list[dict[str, Any]]:
    """The front as ``front.json`` holds it: number, arch_id, arch string and metrics of each net."""
    return [{"number": t.number, "arch_id": t.arch_id, "arch": t.arch, "metrics": t.metrics}
            for t in front_trials(result)]


def count_failed(result: SearchResult) -> int:
    """Trials that failed; those marked ``requeued`` (cut off by a stopped controller, run again) do not count."""
    return sum(1 for t in result.trials if t.state == "FAIL" and t.error != "requeued")


def save_result(result: SearchResult, out_dir: str | Path) -> list[Path]:
    """Write :data:`RESULT_FILES` into ``out_dir`` (created if missing; files there are replaced)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = (result.to_json(), result.to_csv(), json.dumps(front_records(result), indent=2))
    paths = []
    for name, text in zip(RESULT_FILES, texts, strict=True):
        path = out / name
        path.write_text(text)
        paths.append(path)
    return paths
