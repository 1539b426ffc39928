"""What a prediction of one net reports: the calibrated total and each layer's share, next to its MACs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LayerLatency:
    name: str
    key: str
    kind: str
    latency_ms: float
    macs: int
    estimated: bool


@dataclass(frozen=True)
class Prediction:
    total_ms: float
    raw_sum_ms: float
    profile: str
    table: str
    estimated: bool
    layers: tuple[LayerLatency, ...] = field(default=())
    #: the table describes another host (:mod:`latency_tables.host`): this is that host's latency, not this one's
    foreign: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "total_ms": self.total_ms,
            "raw_sum_ms": self.raw_sum_ms,
            "profile": self.profile,
            "table": self.table,
            "estimated": self.estimated,
            "foreign_host": self.foreign,
            "blocks": [
                {
                    "name": lyr.name,
                    "key": lyr.key,
                    "kind": lyr.kind,
                    "latency_ms": lyr.latency_ms,
                    "macs": lyr.macs,
                    "estimated": lyr.estimated,
                }
                for lyr in self.layers
            ],
        }
