"""The screening gate's faces: the terminal prompt, the printed result, and the one call a
command makes before a session (``screen_before_session``).

The logic lives in ``device.screening.gate``; this module only decides how to ask. It asks in a
terminal only when stdin is one (checked before anything is read), so a run without a
terminal and without an answers file is refused at once rather than waiting forever.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from device.screening.gate import (
    QUESTIONS,
    TIER_ADVICE,
    Ask,
    Question,
    ScreeningRefused,
    ScreeningResult,
    require_screening,
)

YES = frozenset({"y", "yes"})
NO = frozenset({"n", "no"})
#: Unclear answers in a row before the prompt gives up (and refuses).
MAX_UNCLEAR_ANSWERS = 3

INTRO = (
    "Before the device starts, a few yes/no questions make sure this massage suits your "
    "neck. Answer y or n."
)


def terminal_asker(stdin: TextIO | None = None, stdout: TextIO | None = None) -> Ask | None:
    """An ``Ask`` that prompts on ``stdout`` and reads ``stdin``, or None when stdin is not a
    terminal (so that nothing ever blocks on a pipe, a file or /dev/null)."""
    inp = sys.stdin if stdin is None else stdin
    out = sys.stdout if stdout is None else stdout
    try:
        is_tty = inp is not None and inp.isatty()
    except (ValueError, OSError):  # closed or detached stream
        is_tty = False
    if not is_tty:
        return None
    total = len(QUESTIONS)
    state = {"n": 0}

    def ask(question: Question) -> bool:
        if state["n"] == 0:
            print(INTRO, file=out, flush=True)
        state["n"] += 1
        for _ in range(MAX_UNCLEAR_ANSWERS):
            print(f"[{state['n']}/{total}] {question.text} [y/n] ", end="", file=out, flush=True)
            line = inp.readline()
            if line == "":
                print(file=out, flush=True)
                raise ScreeningRefused(
                    "screening ended before every question was answered",
                    "Answer every question to start a session",
                )
            word = line.strip().lower()
            if word in YES:
                return True
            if word in NO:
                return False
            print("  please answer y (yes) or n (no)", file=out, flush=True)
        raise ScreeningRefused(
            f"no clear answer to: {question.text}", "Answer y or n to every question"
        )

    return ask


def format_result(result: ScreeningResult) -> str:
    """The result for people: passed, or each reason and the advice."""
    lines = []
    if result.simulated:
        lines.append("(answers given by a SIMULATED user: demo only)")
    if result.passed:
        lines.append("Screening passed: nothing in your answers rules out a gentle session.")
        lines.append(
            "Stop at once if you feel pain, dizziness, tingling or numbness during the session."
        )
    else:
        lines.append("Screening: no session.")
        for finding in result.findings:
            lines.append(f"  - {finding.reason} [{finding.tier.value}]")
        lines.append(result.advice)
        other = {f.tier for f in result.findings} - {result.tier}
        for tier in sorted(other, key=lambda t: t.value):
            lines.append(TIER_ADVICE[tier])
    lines.append(f"(answers from {result.source}, {result.timestamp_utc})")
    return "\n".join(lines)


def screen_before_session(
    *,
    device_is_simulated: bool,
    screening_file: str | Path | None = None,
    simulated_user: bool = False,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> ScreeningResult | None:
    """What a command calls before a session: an answers file if given, else the simulated
    user if asked for (the demo, simulated device only; announced on ``stdout``), else the
    terminal if stdin is one, else refuse (real device) or skip (simulated device: None).
    Raises ``ScreeningRefused`` for every refusal."""
    out = sys.stdout if stdout is None else stdout
    use_terminal = screening_file is None and not simulated_user
    ask = terminal_asker(stdin, out) if use_terminal else None
    result = require_screening(
        device_is_simulated=device_is_simulated,
        screening_file=screening_file,
        ask=ask,
        simulated_user=simulated_user,
        announce=lambda line: print(line, file=out, flush=True),
    )
    return result
