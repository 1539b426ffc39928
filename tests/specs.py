"""Space specs and search settings that tests in more than one file use, written once.

Fixtures that load them stay in the conftest files; a test that needs a
variant copies one (``copy.deepcopy``, ``{**SPEC, ...}``) rather than
changing it.
"""

from __future__ import annotations

from typing import Any

# one stage per block type, so a sample of this space holds every type the proxies must survive
ALL_BLOCKS: dict[str, Any] = {
    "name": "all-blocks",
    "resolutions": [16],
    "classes": 5,
    "se_gate": "hsigmoid",
    "stem": {"channels": 8, "act": ["relu6", "hswish"]},
    "defaults": {"type": "ibn", "t": [1, 2], "k": [3], "se": [0, 0.25], "act": ["relu", "relu6", "hswish", "swish"]},
    "stages": [
        {"channels": 8, "depth": 1, "choices": {"type": "ibn", "t": 2, "groups": [1, 2]}},
        {"channels": 16, "stride": 2, "depth": 1, "choices": {"type": "fused"}},
        {"channels": 16, "depth": 1, "choices": {"type": "tucker"}},
        {"channels": 24, "stride": 2, "depth": 1, "choices": {"type": "dsconv"}},
        {"channels": 24, "depth": 1, "choices": {"type": "conv"}},
        {"channels": 32, "depth": 1, "choices": {"type": "skip"}},
        {"channels": 32, "depth": 1, "choices": {"type": "ibn"}},
    ],
    "head": {"conv": 48, "act": "hswish", "hidden": 32, "hidden_act": "relu"},
}

# two stages, ibn/fused then tucker/dsconv/skip: a latency table of it is small
TINY_SPEC: dict[str, Any] = {
    "name": "tiny",
    "resolutions": [16],
    "classes": 4,
    "se_gate": "sigmoid",
    "stem": {"channels": 8, "act": "relu6"},
    "defaults": {"type": ["ibn", "fused"], "t": [1, 2], "k": [3], "se": [0, 0.25], "act": "relu6"},
    "stages": [
        {"channels": 8, "depth": [1, 2]},
        {"channels": 16, "stride": 2, "depth": 1, "choices": {"type": ["tucker", "dsconv", "skip"], "act": "hswish"}},
    ],
    "head": {"conv": 32, "act": "relu6"},
}

# a search's objectives that need no data and no latency table
SYNFLOW_VS_PARAMS: list[dict[str, str]] = [
    {"metric": "proxy:synflow", "direction": "maximize"},
    {"metric": "params", "direction": "minimize"},
]
