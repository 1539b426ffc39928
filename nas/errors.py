"""Exception types of the nas package.

Like the rest of hwnas, every message names the field or thing at fault and
what was expected, so the CLI and the REST API can show it as it is.
"""

from __future__ import annotations


class NasError(ValueError):
    """Base class of everything nas raises on bad input or an impossible request."""


class DatasetError(NasError):
    """A dataset is unknown, missing, or its files are not in the expected format."""


class ProxyError(NasError):
    """A proxy is unknown or cannot score a net (the message says why)."""


class TrainingError(NasError):
    """A training run was given bad settings or could not run."""
