"""The battery as the faces word it. A device's Status battery level, or a sensor's own
low-power warning (the Tindeq Progressor's kind-4 notification, passed on by its adapter as
a Status of at most 5 %), at or under ``LOW_BATTERY_PCT`` is said in words, not only as a
number."""

from __future__ import annotations

LOW_BATTERY_PCT = 10


def battery_text(pct: int | None) -> str:
    """``96 %``, ``?`` when unknown, ``5 % LOW: charge it soon`` when low."""
    if pct is None:
        return "?"
    if pct <= LOW_BATTERY_PCT:
        return f"{pct} % LOW: charge it soon"
    return f"{pct} %"


def low_battery(pct: int | None) -> bool:
    return pct is not None and pct <= LOW_BATTERY_PCT
