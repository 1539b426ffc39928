"""What a search produces: its trials as hwnas reports them, the Pareto front, and the result files.

A finished Optuna trial becomes a :class:`TrialRecord`; :class:`Front` keeps
the feasible front incrementally (the controller's progress reports and a
result's front and hypervolume history all come from it); a
:class:`SearchResult` is the whole run.

``hwnas search``, the job worker and the API all keep a result as the same
three files, so a folder written by one reads the same in the others:
``result.json`` (the whole :class:`SearchResult`), ``trials.csv`` (one row
per trial) and ``front.json`` (the Pareto-optimal nets only).

Hypervolume is measured in the objectives' own units, all turned into
minimisation, against a reference point fixed once per study: the
config's ``hv_reference``, or else the worst value of each objective among
the first 10 feasible trials plus 10% of their range (stored with the study,
so a resumed search and its history use the same one; :func:`reference_point`).
Nets worse than the reference in any objective add nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.pareto import hypervolume, to_minimize
from nas.strategies import RECORD_ATTR, violations

__all__ = [
    "REFERENCE_TRIALS",
    "RESULT_FILES",
    "Front",
    "SearchProgress",
    "SearchResult",
    "TrialRecord",
    "completed",
    "count_failed",
    "front_records",
    "front_trials",
    "is_feasible",
    "reference_point",
    "save_result",
    "summarize",
    "trial_record",
]

#: the files :func:`save_result` writes, in this order
RESULT_FILES = ("result.json", "trials.csv", "front.json")
#: how many feasible trials fix the hypervolume reference point
REFERENCE_TRIALS = 10


@dataclass
class TrialRecord:
    number: int
    state: str
    arch: str | None
    arch_id: str | None
    params: dict[str, Any]
    metrics: dict[str, float | None]
    objectives: list[float] | None
    violations: list[float]
    feasible: bool
    error: str | None
    seconds: float
    on_front: bool = False
    node: str | None = None  # the Ray node that evaluated the trial's net (None: the controller or the cache)
    #: a latency metric of this trial was predicted from a table measured on another host
    latency_foreign: bool = False


@dataclass
class SearchProgress:
    done: int
    budget_trials: int | None
    in_flight: int
    elapsed: float
    best: dict[str, float]
    front_size: int
    hypervolume: float | None


@dataclass
class SearchResult:
    study: str
    objectives: list[dict[str, str]]
    trials: list[TrialRecord]
    front: list[int]
    hv_reference: list[float] | None
    hv_history: list[tuple[int, float]]
    elapsed: float
    evaluations_cached: int = 0
    controller_seconds_per_trial: float | None = None
    notes: list[str] = field(default_factory=list)
    #: profile -> the latency table its metrics came from (:meth:`nas.table_choice.TableChoice.as_dict`)
    latency_tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def latency_warnings(self) -> list[str]:
        """One line per latency profile predicted from a table of another host, with the command that builds
        this host's."""
        from nas.table_choice import foreign_warnings

        return foreign_warnings(self.latency_tables)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=float)

    def to_csv(self) -> str:
        metric_names = sorted({m for t in self.trials for m in t.metrics})
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(
            ["number", "state", "arch_id", "feasible", "on_front", *metric_names, "latency_foreign", "error", "arch"]
        )
        for t in self.trials:
            writer.writerow(
                [
                    t.number,
                    t.state,
                    t.arch_id,
                    t.feasible,
                    t.on_front,
                    *[t.metrics.get(m) for m in metric_names],
                    t.latency_foreign,
                    t.error or "",
                    t.arch or "",
                ]
            )
        return buf.getvalue()


def trial_record(t: Any) -> TrialRecord:
    """A finished Optuna trial as hwnas reports it (on_front is decided over all trials, later)."""
    rec = t.user_attrs.get(RECORD_ATTR, {})
    viol = list(rec.get("violations", []))
    return TrialRecord(
        number=t.number,
        state=t.state.name,
        arch=rec.get("arch"),
        arch_id=rec.get("arch_id"),
        params=dict(t.params),
        metrics=dict(rec.get("metrics", {})),
        objectives=list(t.values) if t.values is not None else None,
        violations=viol,
        feasible=t.state.name == "COMPLETE" and all(v <= 0 for v in viol),
        error=rec.get("error") or ("requeued" if rec.get("requeued") else None),
        seconds=(t.duration.total_seconds() if t.duration else 0.0),
        node=rec.get("node"),
        latency_foreign=bool(rec.get("latency_foreign")),
    )


def completed(study: Any) -> list[Any]:
    """A study's completed Optuna trials, in number order."""
    from optuna.trial import TrialState

    return sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number)


def is_feasible(t: Any) -> bool:
    """A trial meets every constraint (as the search recorded its violations)."""
    return all(v <= 0 for v in violations(t))


def reference_point(study: Any, directions: Sequence[str], budget_trials: int | None) -> list[float] | None:
    """The reference point the first :data:`REFERENCE_TRIALS` feasible trials of ``study`` fix (minimisation form).

    None until there are that many (or the whole trial budget, if smaller).
    """
    feasible = [t for t in completed(study) if is_feasible(t)]
    if len(feasible) < min(REFERENCE_TRIALS, budget_trials or REFERENCE_TRIALS):
        return None
    pts = to_minimize([t.values for t in feasible[:REFERENCE_TRIALS]], directions)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return [float(v) for v in hi + 0.1 * np.where(hi > lo, hi - lo, np.abs(hi) + 1e-12)]


class Front:
    """The non-dominated set of the points added so far, kept incrementally, in minimisation form.

    A new point is checked against the front only, never against every
    trial, so the same structure serves the controller's progress reports
    and a result's front and hypervolume history. Points keep the order they
    were added in (``numbers`` names the trial of each row), and an exact
    duplicate of a front point stays on it, as :func:`nas.pareto.non_dominated`
    has it.
    """

    def __init__(self, directions: Sequence[str], names: Sequence[str] = ()) -> None:
        self.directions = list(directions)
        self.names = list(names)
        self.points = np.zeros((0, len(self.directions)))
        self.numbers: list[int | None] = []
        self.best = [float("inf")] * len(self.directions)

    @classmethod
    def of_study(cls, study: Any, directions: Sequence[str], names: Sequence[str] = ()) -> Front:
        """The front of a study's completed feasible trials (what a resumed controller starts from)."""
        front = cls(directions, names)
        for t in completed(study):
            if is_feasible(t):
                front.add(list(t.values), t.number)
        return front

    def add(self, values: Sequence[float], number: int | None = None) -> None:
        p = to_minimize([values], self.directions)[0]
        self.best = [min(b, v) for b, v in zip(self.best, p, strict=True)]
        if len(self.points):
            if np.any(np.all(self.points <= p, axis=1) & np.any(self.points < p, axis=1)):
                return
            keep = ~(np.all(p <= self.points, axis=1) & np.any(p < self.points, axis=1))
            self.points = self.points[keep]
            self.numbers = [n for n, k in zip(self.numbers, keep.tolist(), strict=True) if k]
        self.points = np.vstack([self.points, p])
        self.numbers.append(number)

    def hypervolume(self, reference: Sequence[float]) -> float:
        """Of the front against ``reference`` (minimisation form); 0.0 while the front is empty."""
        return hypervolume(self.points, reference) if len(self.points) else 0.0

    def progress(
        self, done: int, budget: int | None, in_flight: int, elapsed: float, reference: list[float] | None
    ) -> SearchProgress:
        signs = [-1.0 if d == "maximize" else 1.0 for d in self.directions]
        best = {n: s * b for n, s, b in zip(self.names, signs, self.best, strict=True) if np.isfinite(b)}
        hv = hypervolume(self.points, reference) if reference is not None and len(self.points) else None
        return SearchProgress(done, budget, in_flight, elapsed, best, len(self.points), hv)


def summarize(
    trials: Sequence[Any], directions: Sequence[str], reference: list[float] | None
) -> tuple[list[TrialRecord], list[int], list[tuple[int, float]]]:
    """(records, front, hypervolume history) of finished Optuna trials, in trial-number order.

    The front is computed once, in one pass: the feasible trials enter a
    :class:`Front` in order, the hypervolume after each trial is read off it
    (when there is a reference point), and what is left at the end is the
    front; its records get ``on_front``.
    """
    records = [trial_record(t) for t in sorted(trials, key=lambda t: t.number)]
    front = Front(directions)
    history: list[tuple[int, float]] = []
    for i, r in enumerate(records):
        if r.feasible and r.objectives is not None:
            front.add(r.objectives, r.number)
        if reference is not None:
            history.append((i + 1, front.hypervolume(reference)))
    numbers = [n for n in front.numbers if n is not None]
    on_front = set(numbers)
    for r in records:
        r.on_front = r.number in on_front
    return records, numbers, history


def front_trials(result: SearchResult) -> list[TrialRecord]:
    """The trials on the Pareto front, in trial order."""
    return [t for t in result.trials if t.on_front]


def front_records(result: SearchResult) -> list[dict[str, Any]]:
    """The front as ``front.json`` holds it: number, arch_id, arch string and metrics of each net, and whether
    a latency among them came from a table of another host."""
    return [
        {
            "number": t.number,
            "arch_id": t.arch_id,
            "arch": t.arch,
            "metrics": t.metrics,
            "latency_foreign": t.latency_foreign,
        }
        for t in front_trials(result)
    ]


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
