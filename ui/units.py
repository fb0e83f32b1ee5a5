"""Force as the faces show it: newtons (the default, and always in data files and JSON), or
kilograms-force for gauge owners (``--units kg``; 1 kgf = 9.80665 N, standard gravity)."""

from __future__ import annotations

#: newtons per kilogram-force (standard gravity)
KGF_N = 9.80665
UNITS = ("N", "kg")


def add_units_option(parser) -> None:
    parser.add_argument(
        "--units",
        choices=UNITS,
        default="N",
        help="show force in newtons (default) or kilograms-force (kg, as gauges read); "
        "recordings and --json stay in newtons",
    )


def label(units: str) -> str:
    return "kgf" if units == "kg" else "N"


def shown(force_n: float, units: str) -> float:
    """``force_n`` in the unit the face shows."""
    return force_n / KGF_N if units == "kg" else force_n


def figure(force_n: float, units: str) -> str:
    """A limit or band edge as words: newtons as written (``:g``), kgf to 0.01."""
    return f"{force_n:g}" if units != "kg" else f"{force_n / KGF_N:.2f}"
