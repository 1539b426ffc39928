"""Judging proxies on a ground truth: every scorer's score of every net, and how well each ranks the nets.

Used by ``benchmarks/proxies.py`` and ``hwnas proxies check`` once the nets
are trained (:mod:`nas.proxies.check`):

- :func:`score_nets`: every single proxy on every net, and its CPU time;
- :func:`combined`: an ``ensemble:`` or ``rank:`` combination as a search
  computes it; :func:`all_scores`: the single proxies, :data:`COMBOS` and the
  few-shot predictor (:data:`PREDICTOR_PROXIES`) on every net;
- :func:`judge`: each scorer's evidence (:mod:`nas.proxies.evidence`);
  :func:`simplicity_order`: the order a choice between them prefers (the
  :data:`BASELINES`, ``macs`` and ``params``, are judged but never chosen);
  :func:`choice_stability`: how often the same choice comes out of other
  random halves of the nets;
- :func:`budget_axis`: what regret's budgets (and latency control) are drawn on.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.datasets import DataSpec
from nas.errors import ProxyError
from searchspace.architecture import Architecture

_log = logging.getLogger(__name__)

# the combinations judged beside the single proxies, declared before any result was seen: AZ-NAS style rank
# combinations of each proxy family with MACs, and the literature's mean-z ensembles
COMBOS = (
    "rank:naswot+macs",
    "rank:zico+macs",
    "rank:synflow+macs",
    "rank:meco_opt+macs",
    "rank:swap+macs",
    "rank:zen+macs",
    "rank:jacob_cov+macs",
    "rank:naswot+zico+macs",
    "rank:naswot+synflow+macs",
    "rank:meco_opt+zico+macs",
    "rank:naswot+zico+synflow+macs",
    "ensemble:synflow+jacob_cov+snip",
    "ensemble:synflow+naswot",
    "ensemble:zico+naswot",
    "ensemble:macs+naswot+synflow",
)
# the proxies the few-shot predictor reads (cheap ones from different families)
PREDICTOR_PROXIES = ("naswot", "zico", "synflow", "meco_opt")


def budget_axis(
    archs: Sequence[Architecture], spaces: Sequence[Any], profile: str, *, this_host: bool = True
) -> tuple[list[float], str]:
    """What regret's budgets and the latency-controlled bins are drawn on: each net's latency as a search on this
    host would predict it (:func:`latency_predictor`), or its MACs, with a warning, where no table answers.
    ``this_host=False`` predicts from the best table found as it is (a benchmark whose evidence must not depend
    on the VM it ran on uses the shipped tables)."""
    from latency_tables.api import load_predictor
    from searchspace.cost import count_cost

    try:
        tables: dict[str, Any] = {}
        out = []
        for a, space in zip(archs, spaces, strict=True):
            key = space if isinstance(space, str) else space.name
            if key not in tables:
                tables[key] = latency_predictor(profile, space) if this_host else load_predictor(profile, space=key)
            out.append(float(tables[key].predict_many([a])[0]))
        return out, f"latency:{profile}"
    except Exception as exc:  # noqa: BLE001 - no table for this space or profile: budgets in MACs instead
        _log.warning("no latency for the budgets (%s); using MACs", exc)
        return [float(count_cost(a).macs) for a in archs], "macs"


def latency_predictor(profile: str, space: Any) -> Any:
    """``profile``'s predictor for ``space`` as a search with ``latency_table: auto`` gets it
    (:func:`nas.table_choice.pick_table`): this host's table, built on first use where this host can run the
    profile (a table measured on another VM of the same kind can be 10-20% off here, and a space of the user's
    own has layers no shipped table holds), else the best table found, flagged by its host check."""
    from latency_tables.api import load_predictor
    from nas.table_choice import pick_table

    key = space if isinstance(space, str) else space.name
    choice = pick_table("auto", profile, space, metrics=["latency"], space_name=key)
    if choice.built_now or choice.warning:
        _log.warning("%s", choice.warning or choice.summary)
    return load_predictor(profile, table=choice.path, space=key)


#: part of a score cache's header: raise it when a proxy's definition changes, so older scores are not reused
SCORES_VERSION = 1


class ScoreCache:
    """Scores already computed, appended to a JSON-lines file as each net is scored, so a check killed while
    scoring (or run again with more nets) scores only what it has not. The first line names the data, batch
    size and seed the scores were made with; a file made with others is started afresh."""

    def __init__(self, path: str | Path, data: DataSpec, size: int = 64, seed: int = 0) -> None:
        import json

        self.path = Path(path)
        self.header = {
            "kind": "hwnas-proxy-scores",
            "version": SCORES_VERSION,
            "data": data.model_dump(mode="json"),
            "size": size,
            "seed": seed,
        }
        self.scores: dict[tuple[str, str], tuple[float, float]] = {}
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        try:
            same = bool(lines) and json.loads(lines[0]) == self.header
        except json.JSONDecodeError:
            same = False
        if not same:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.header) + "\n")
            return
        for line in lines[1:]:
            try:
                row = json.loads(line)
                value = math.nan if row["value"] is None else float(row["value"])
                self.scores[(row["arch"], row["proxy"])] = (value, float(row["seconds"]))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):  # a line cut by a kill
                continue

    def get(self, arch: str, proxy: str) -> tuple[float, float] | None:
        return self.scores.get((arch, proxy))

    def add(self, arch: str, rows: Mapping[str, tuple[float, float]]) -> None:
        """One net's scores (proxy -> (value, seconds)), appended in one write."""
        import json

        text = "".join(
            json.dumps({"arch": arch, "proxy": n, "value": None if math.isnan(v) else v, "seconds": t}) + "\n"
            for n, (v, t) in rows.items()
        )
        with self.path.open("a") as fh:
            fh.write(text)
        for n, vt in rows.items():
            self.scores[(arch, n)] = vt


def score_nets(
    archs: Sequence[Architecture],
    names: Sequence[str],
    data: DataSpec,
    *,
    size: int = 64,
    seed: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
    cache: ScoreCache | None = None,
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Every single proxy on every net with one fixed batch per resolution (nan where a proxy cannot score a
    net), and each proxy's median CPU seconds per net: CPU time on one torch thread (set for the call, the
    caller's count restored after), which is the time on one core, and other processes on the machine do not
    inflate it."""
    import torch

    if (
        cache is not None
        and cache.header["data"] != data.model_dump(mode="json")
        or (cache is not None and (cache.header["size"], cache.header["seed"]) != (size, seed))
    ):
        raise ValueError("score_nets: the score cache was made for other data, batch size or seed")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _score_nets(archs, names, data, size=size, seed=seed, progress=progress, cache=cache)
    finally:
        torch.set_num_threads(threads)


def _score_nets(
    archs: Sequence[Architecture],
    names: Sequence[str],
    data: DataSpec,
    *,
    size: int,
    seed: int,
    progress: Callable[[int, int, str], None] | None,
    cache: ScoreCache | None,
) -> tuple[dict[str, list[float]], dict[str, float]]:
    import numpy as np

    from nas import proxies

    scores: dict[str, list[float]] = {n: [] for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for i, arch in enumerate(archs):
        code = arch.encode()
        known = {n: got for n in names if cache is not None and (got := cache.get(code, n)) is not None}
        fresh: dict[str, tuple[float, float]] = {}
        if len(known) < len(names):
            x, y, classes = proxies.default_batch(arch, data, size=size, seed=seed)
            a = proxies.for_classes(arch, classes)
        for name in names:
            if name in known:
                value, took = known[name]
                scores[name].append(value)
                times[name].append(took)
                continue
            start = time.process_time()
            lasting = True  # a score, or a ProxyError (the proxy cannot score this net): the same next time
            try:
                value = proxies.score(name, a, (x, y), seed=seed)
            except Exception as exc:  # noqa: BLE001 - one net a proxy cannot score must not end an hours-long check
                if not isinstance(exc, ProxyError):
                    _log.warning("proxy %s failed on %s: %s: %s", name, arch.arch_id, type(exc).__name__, exc)
                    lasting = False  # out of memory, a bug: tried again next time, not cached
                value = math.nan
            times[name].append(time.process_time() - start)
            scores[name].append(value)
            if lasting:
                fresh[name] = (value, times[name][-1])
        if cache is not None and fresh:
            cache.add(code, fresh)
        if progress:
            progress(i + 1, len(archs), arch.arch_id)
    return scores, {n: float(np.median(t)) for n, t in times.items()}


def combined(
    name: str, nets: Mapping[str, Sequence[float]], reference: Mapping[str, Sequence[float]], source: str
) -> list[float]:
    """An ``ensemble:`` or ``rank:`` combination as a search computes it: each member placed against the
    reference sample's scores of the same space (nan where a member could not score the net)."""
    from nas.proxies.ensemble import Reference, mode_of, parse_members

    members = parse_members(name)
    n = len(nets[members[0]])
    try:
        ref = Reference.fit({m: [v for v in reference[m] if math.isfinite(v)] for m in members}, source, mode_of(name))
    except ProxyError as exc:  # a member scored too few reference nets: this combination has no scores here
        _log.warning("%s: %s", name, exc)
        return [math.nan] * n
    return [
        ref.combine({m: nets[m][i] for m in members}) if all(math.isfinite(nets[m][i]) for m in members) else math.nan
        for i in range(n)
    ]


def judge(
    columns: Mapping[str, Sequence[float]],
    truth: Sequence[float],
    macs: Sequence[float],
    latency: Sequence[float],
    *,
    samples: int = 1000,
    budgets: Sequence[float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each scorer's evidence (:func:`nas.proxies.evidence.assess`), regret under ``budgets`` (default: the
    deciles of ``latency``)."""
    from nas.proxies import evidence

    budgets = list(budgets) if budgets is not None else evidence.budgets_for(latency)
    return {
        name: evidence.assess(values, truth, macs, latency, budgets=budgets, samples=samples)
        for name, values in columns.items()
    }


def choice_stability(
    columns: Mapping[str, Sequence[float]],
    truth: Sequence[float],
    macs: Sequence[float],
    candidates: Sequence[str],
    *,
    splits: int = 50,
    samples: int = 200,
    seed: int = 0,
) -> dict[str, int]:
    """How many of ``splits`` random halves of the nets choose each candidate. The rule is
    :func:`nas.proxies.evidence.choose` by balanced Spearman with its half-width margin, ``candidates`` simplest
    first. A choice made on one half of a few dozen nets can owe much to which half it was: this says how much."""
    import numpy as np

    from nas.proxies import evidence

    if not candidates:
        raise ValueError("choice_stability: no candidates")
    n = len(truth)
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(candidates, 0)
    for _ in range(splits):
        idx = np.sort(rng.permutation(n)[: n // 2])
        half_truth, half_macs = [truth[i] for i in idx], [macs[i] for i in idx]
        # only the choice's key: judge() would compute every other measure and its interval too
        results = {
            c: evidence.balanced([columns[c][i] for i in idx], half_truth, half_macs, samples=samples)
            for c in candidates
        }
        counts[evidence.choose(results, candidates, key="balanced", interval="balanced_interval")["choice"]] += 1
    return counts


def predictor_label(proxies: Sequence[str] = PREDICTOR_PROXIES) -> str:
    return "predictor:ridge(" + "+".join(proxies) + ")"


def all_scores(
    archs: Sequence[Architecture],
    spaces: Sequence[str],
    truth: Sequence[float],
    data: DataSpec,
    *,
    reference_size: int = 32,
    progress: Callable[[int, int, str], None] | None = None,
    cache: ScoreCache | None = None,
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Every candidate's score of every net: the single proxies, :data:`COMBOS` (members placed against
    ``reference_size`` random nets of the net's own space, as a search does) and the few-shot predictor
    (leave-one-out over the nets of each space, fitted on ``truth``, so no net is predicted by a model
    that saw it). With ``cache``, scores it holds are not computed again (the reference nets' too)."""
    from nas import proxies
    from nas.proxies.ensemble import parse_members
    from nas.proxies.predictor import cross_validated

    names = [n for n in proxies.list_proxies() if n != "default"]
    scores, seconds = score_nets(archs, names, data, progress=progress, cache=cache)
    members = sorted({m for c in COMBOS for m in parse_members(c)})
    for combo in COMBOS:
        scores[combo] = [math.nan] * len(archs)
        seconds[combo] = sum(seconds[m] for m in parse_members(combo))
    label = predictor_label()
    scores[label] = [math.nan] * len(archs)
    seconds[label] = sum(seconds[p] for p in PREDICTOR_PROXIES)
    for space in sorted(set(spaces)):
        idx = [i for i, s in enumerate(spaces) if s == space]
        first = archs[idx[0]]
        _, _, classes = proxies.default_batch(first, data)
        refs = proxies.reference_archs(space, first.resolution, classes, seed=0, size=reference_size)
        ref_scores, _ = score_nets(refs, members, data, cache=cache)
        for combo in COMBOS:
            values = combined(
                combo,
                {m: [scores[m][i] for i in idx] for m in members},
                ref_scores,
                f"{len(refs)} random nets of {space}",
            )
            for i, v in zip(idx, values, strict=True):
                scores[combo][i] = v
        usable = [i for i in idx if all(math.isfinite(scores[p][i]) for p in PREDICTOR_PROXIES)]
        if len(usable) >= 8:
            oof = cross_validated(
                [archs[i] for i in usable],
                {p: [scores[p][i] for i in usable] for p in PREDICTOR_PROXIES},
                [truth[i] for i in usable],
                PREDICTOR_PROXIES,
            )
            for i, v in zip(usable, oof, strict=True):
                scores[label][i] = float(v)
    return scores, seconds


# the counts: baselines every scorer is judged against, never the default or a recommendation. A search's other
# objective is latency, a cost already; with a count on the accuracy axis too, the front is the nets sorted by
# size, and at equal cost (what a latency-bound user chooses between) a count ranks nothing (issue 13)
BASELINES = ("macs", "params")


def simplicity_order(scores: Mapping[str, Sequence[float]], seconds: Mapping[str, float]) -> list[str]:
    """The candidates for a default or a recommendation, simplest first: single proxies by cost, mean ensembles,
    rank combinations (with ``macs`` as a member: size weighed against a proxy's opinion), the predictor; a later
    one must beat an earlier one by its interval's half-width to be chosen. The :data:`BASELINES` are left out."""
    singles = sorted((n for n in scores if ":" not in n and n not in BASELINES), key=lambda n: seconds[n])
    return [
        *singles,
        *[n for n in scores if n.startswith("ensemble:")],
        *[n for n in scores if n.startswith("rank:")],
        *[n for n in scores if n.startswith("predictor:")],
    ]
