"""``massagectl demo``: the built-in simulated ball, end to end."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the demo on the built-in simulated ball",
        description=(
            "Stream live force from the built-in simulated sensor ball (sim://ball), which "
            "presses, holds and releases. No hardware needed."
        ),
    )
    p.add_argument("--duration", type=float, default=20.0, metavar="S", help="default: 20 s")
    p.add_argument("--speed", type=float, default=1.0, metavar="K", help="simulation speed")
    p.set_defaults(func=run)


async def run(args) -> int:
    from ui.commands import stream

    url = f"sim://ball?speed={args.speed:g}"
    ns = argparse.Namespace(url=url, json=False, duration=args.duration, rate=1000, batch=10)
    return await stream.run(ns)
