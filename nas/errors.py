"""Exception types of the nas package, all in one place.

Like the rest of hwnas, every message names the field or thing at fault and
what was expected, so the CLI and the REST API can show it as it is. The
modules that raise them re-export their own (``nas.search.SearchError``,
``nas.config.ConfigError``, ...), so either import path works.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatasetError",
    "ExecutorError",
    "MetricError",
    "NasError",
    "ProxyError",
    "SearchError",
    "StrategyError",
    "TrainingError",
]


class NasError(ValueError):
    """Base class of everything nas raises on bad input or an impossible request."""


class ConfigError(NasError):
    """A search config is invalid; the message names every bad field."""


class DatasetError(NasError):
    """A dataset is unknown, missing, or its files are not in the expected format."""


class ExecutorError(NasError):
    """The executor cannot start (e.g. no Ray cluster at the address given)."""


class MetricError(NasError):
    """A metric name is malformed or names something that does not exist."""


class ProxyError(NasError):
    """A proxy is unknown or cannot score a net (the message says why)."""


class SearchError(NasError):
    """The search cannot start or continue (study exists, another controller runs it, ...)."""


class StrategyError(NasError):
    """A strategy is unknown or its options do not fit the config."""


class TrainingError(NasError):
    """A training run was given bad settings or could not run."""
