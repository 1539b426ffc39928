"""What a search can measure about a net, by name.

``params``, ``macs``, ``activations`` (analytic counts), ``latency:<profile>``
(the profile's latency table; vectorised over a batch of nets),
``proxy:<name>`` (a zero-cost proxy or ensemble, ``default`` included),
``predictor:<name>`` (a few-shot accuracy predictor over proxies and the
net's shape, fitted by ``hwnas proxies fit``) and ``train:<dataset>``
(validation accuracy after the config's training budget). The first three kinds are cheap and computed by the search
controller; proxies and training are expensive and go to workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nas.errors import MetricError

Kind = Literal["params", "macs", "activations", "latency", "proxy", "predictor", "train"]
CHEAP: frozenset[str] = frozenset({"params", "macs", "activations", "latency"})
NATURAL_DIRECTION = {
    "params": "minimize",
    "macs": "minimize",
    "activations": "minimize",
    "latency": "minimize",
    "proxy": "maximize",
    "predictor": "maximize",
    "train": "maximize",
}


@dataclass(frozen=True)
class Metric:
    """A parsed metric name: its kind and argument (profile, proxy or dataset name)."""

    name: str
    kind: Kind
    arg: str = ""

    @property
    def cheap(self) -> bool:
        return self.kind in CHEAP

    @property
    def unit(self) -> str:
        return {"latency": "ms", "train": "accuracy", "proxy": "score", "predictor": "accuracy"}.get(self.kind, "count")


def parse_metric(name: str) -> Metric:
    """``latency:ort-cpu-fp32-t1`` -> Metric(kind="latency", arg="ort-cpu-fp32-t1"), checking the argument."""
    text = name.strip()
    if text in ("params", "macs", "activations"):
        # mypy: kind narrowed to the Literal by the membership check above
        return Metric(text, text)  # type: ignore[arg-type]
    kind, sep, arg = text.partition(":")
    if not sep or kind not in ("latency", "proxy", "predictor", "train") or not arg:
        raise MetricError(
            f"metric {name!r}: expected params, macs, activations, latency:<profile>, proxy:<name>, "
            "predictor:<name> or train:<dataset>"
        )
    if kind == "latency":
        from latency_tables.errors import LatencyTableError
        from latency_tables.profiles import DeviceProfile

        try:
            DeviceProfile.parse(arg)
        except LatencyTableError as exc:
            raise MetricError(f"metric {name!r}: {exc}") from None
    elif kind == "proxy":
        from nas.proxies import resolve

        resolve(arg)  # raises ProxyError naming the known proxies
    elif kind == "predictor":
        from nas.proxies.predictor import load

        load(arg)  # raises ProxyError naming the known predictors
    else:
        from nas.datasets import DATASETS

        if arg not in DATASETS:
            raise MetricError(
                f"metric {name!r}: unknown dataset {arg!r}; expected one of {', '.join(DATASETS.names())} "
                "(a folder or .npz file is given in the config's dataset section, e.g. name: npz, path: ...)"
            )
    # mypy: kind narrowed to the Literal by the membership check above
    return Metric(text, kind, arg)  # type: ignore[arg-type]
