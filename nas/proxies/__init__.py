"""Accuracy proxies: score an architecture in milliseconds to seconds instead of training it.

    >>> from nas import proxies
    >>> proxies.list_proxies()
    >>> proxies.score("synflow", arch)                # builds the model itself
    >>> proxies.score("default", arch, batch=(x, y))  # the measured-best configuration

Every registered proxy is one function in a module of its family, all
imported by :mod:`nas.proxies.zero_cost` (or in a user's module that calls
:func:`register_proxy`). ``ensemble:a+b`` combines
any of them (:mod:`nas.proxies.ensemble`). ``default`` names the
configuration that ranked trained accuracy best in ``benchmarks/proxies.py``;
that script writes it to ``nas/proxies/default.json``.

The logic lives in :mod:`nas.proxies.scoring` (module state too: the
``default.json`` path and cache, reference samples); this package only
re-exports it, so patch ``nas.proxies.scoring`` to change behaviour. It
imports torch only when a model is scored, and never the service.
"""

from __future__ import annotations

from nas.errors import ProxyError
from nas.proxies.base import PROXIES, Candidate, Proxy, register_proxy
from nas.proxies.ensemble import Reference, is_ensemble, mode_of, parse_members, rank_vote
from nas.proxies.scoring import _REFERENCES as _REFERENCES
from nas.proxies.scoring import (
    DEFAULT_BATCH,
    DEFAULT_FILE,
    canonical,
    default_batch,
    default_proxy,
    describe,
    for_classes,
    get_proxy,
    list_proxies,
    reference_archs,
    reference_for,
    resolve,
    score,
    score_members,
)
from nas.proxies.scoring import _data_view as _data_view
from nas.proxies.scoring import _default_record as _default_record
from nas.proxies.scoring import _fingerprint as _fingerprint
from nas.proxies.scoring import _reference_space as _reference_space
from nas.proxies.scoring import _registry as _registry
from searchspace.architecture import Architecture

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_FILE",
    "PROXIES",
    "Architecture",
    "Candidate",
    "Proxy",
    "ProxyError",
    "Reference",
    "canonical",
    "default_batch",
    "default_proxy",
    "describe",
    "for_classes",
    "get_proxy",
    "is_ensemble",
    "list_proxies",
    "mode_of",
    "parse_members",
    "rank_vote",
    "reference_archs",
    "reference_for",
    "register_proxy",
    "resolve",
    "score",
    "score_members",
]
