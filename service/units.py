"""Numbers for people: one way to write 3,504,872 params as 3.50M, for the CLI's tables and the model card."""

from __future__ import annotations


def human(n: float) -> str:
    """3,504,872 -> '3.50M'; for MACs and params in tables."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))
