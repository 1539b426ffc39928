"""Channel rounding used by every MobileNet-family net."""

from __future__ import annotations


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (ties up).

    The result is at least ``min_value`` (default: ``divisor``) and never below
    90% of ``value``: if rounding down loses more than 10%, one more divisor
    is added. This is the rule of the TF MobileNet reference and torchvision,
    so known nets come out channel-exact.
    """
    if divisor < 1:
        raise ValueError(f"divisor must be >= 1, got {divisor}")
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded
