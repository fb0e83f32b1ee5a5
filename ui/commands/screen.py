"""``massagectl screen``: run the screening gate on its own and print the result."""

from __future__ import annotations

import json
import sys

from device.screening.gate import ANSWERS_FILE_HELP, QUESTIONS, ScreeningRefused
from ui.screening_prompt import format_result, screen_before_session


def register(sub) -> None:
    p = sub.add_parser(
        "screen",
        help="answer the safety screening questions and see the result",
        description=(
            "Run the safety screening that comes before any session on a real device: "
            "yes/no questions in a terminal, or an answers file for unattended runs. "
            "Without a terminal and without --screening FILE it refuses at once. "
            "Exit status: 0 passed, 2 refused or could not screen."
        ),
        epilog=f"Answers file: {ANSWERS_FILE_HELP}.",
    )
    p.add_argument(
        "--screening", metavar="FILE", help="answers file (TOML or JSON), for unattended runs"
    )
    p.add_argument("--json", action="store_true", help="print the result record as JSON")
    p.add_argument(
        "--questions", action="store_true", help="list the question ids and texts, then exit"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    if args.questions:
        for q in QUESTIONS:
            kind = "red flag" if q.is_red_flag else "must be yes"
            print(f"{q.id:18} {kind:11} {q.text}")
        return 0
    try:
        # Screening on its own is judged as for a real device: no skipping.
        # With --json, questions go to stderr so that stdout stays pure JSON.
        result = screen_before_session(
            device_is_simulated=False,
            screening_file=args.screening,
            stdout=sys.stderr if args.json else None,
        )
    except ScreeningRefused as exc:
        if exc.result is None:
            raise
        result = exc.result
    assert result is not None
    if args.json:
        print(json.dumps(result.to_record(), indent=2))
    else:
        stream = sys.stdout if result.passed else sys.stderr
        print(format_result(result), file=stream)
    return 0 if result.passed else 2
