"""A search result as files (result.json, trials.csv, front.json) and the counts every caller reports."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from nas.config import SearchConfig
from nas.results import RESULT_FILES, count_failed, front_records, front_trials, save_result
from nas.search import Search, SearchResult, TrialRecord


def trial(
    number: int, state: str = "COMPLETE", on_front: bool = False, error: str | None = None, **metrics: float
) -> TrialRecord:
    return TrialRecord(
        number=number,
        state=state,
        arch=f"arch-{number}" if state == "COMPLETE" else None,
        arch_id=f"id{number}" if state == "COMPLETE" else None,
        params={"x": number},
        metrics=dict(metrics),
        objectives=list(metrics.values()) or None,
        violations=[],
        feasible=state == "COMPLETE",
        error=error,
        seconds=0.5,
        on_front=on_front,
    )


def make_result() -> SearchResult:
    trials = [
        trial(0, on_front=True, params=100.0, macs=5.0),
        trial(1, params=300.0, macs=9.0),
        trial(2, state="FAIL", error="proxy 'synflow': NaN"),
        trial(3, state="FAIL", error="requeued"),
        trial(4, on_front=True, params=50.0, macs=8.0),
    ]
    return SearchResult(
        study="s",
        objectives=[{"metric": "params", "direction": "minimize"}, {"metric": "macs", "direction": "minimize"}],
        trials=trials,
        front=[0, 4],
        hv_reference=[400.0, 10.0],
        hv_history=[(1, 5.0), (5, 7.0)],
        elapsed=1.0,
    )


def test_front_and_failed_counts() -> None:
    result = make_result()
    assert [t.number for t in front_trials(result)] == [0, 4]
    assert front_records(result) == [
        {
            "number": 0,
            "arch_id": "id0",
            "arch": "arch-0",
            "metrics": {"params": 100.0, "macs": 5.0},
            "latency_foreign": False,
        },
        {
            "number": 4,
            "arch_id": "id4",
            "arch": "arch-4",
            "metrics": {"params": 50.0, "macs": 8.0},
            "latency_foreign": False,
        },
    ]
    assert count_failed(result) == 1  # the requeued trial was cut off, not failed


def test_save_result_writes_the_three_files(tmp_path: Path) -> None:
    result = make_result()
    out = tmp_path / "runs" / "s"  # created, parents too
    paths = save_result(result, out)
    assert (
        paths == [out / name for name in RESULT_FILES] == [out / "result.json", out / "trials.csv", out / "front.json"]
    )
    data = json.loads((out / "result.json").read_text())
    assert [t["number"] for t in data["trials"]] == [0, 1, 2, 3, 4] and data["front"] == [0, 4]
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE", "FAIL", "FAIL", "COMPLETE"]
    assert rows[1]["params"] == "300.0" and rows[2]["error"] == "proxy 'synflow': NaN"
    assert json.loads((out / "front.json").read_text()) == front_records(result)

    # saving again replaces the files (a resumed search rewrites its folder)
    result.trials[1].on_front = True
    save_result(result, out)
    assert [r["number"] for r in json.loads((out / "front.json").read_text())] == [0, 1, 4]


def test_save_result_of_a_real_search(tmp_path: Path) -> None:
    cfg: dict[str, Any] = {
        "space": "mobilenetv3",
        "budget": {"trials": 4},
        "seed": 1,
        "objectives": [{"metric": "params", "direction": "minimize"}, {"metric": "macs", "direction": "minimize"}],
    }
    result = Search(SearchConfig.parse(cfg), f"sqlite:///{tmp_path / 's.db'}").run()
    save_result(result, tmp_path / "out")
    front = json.loads((tmp_path / "out" / "front.json").read_text())
    assert [r["number"] for r in front] == sorted(result.front) and front
    assert all(r["arch_id"] and r["arch"] and r["metrics"]["params"] > 0 for r in front)
    assert len(list(csv.DictReader((tmp_path / "out" / "trials.csv").open()))) == len(result.trials) == 4
