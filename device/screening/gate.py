"""The screening gate (DESIGN.md, "Safety model", item 3).

Before anything drives vibration on a real device, the user answers a short list of yes/no
questions. Three check that the pain is the kind a self-massage is meant for (mild, recent,
muscular); the rest are red flags, each with a tier of advice: ``seek_care_now`` (the
symptom may be serious: get medical help now) or ``ask_doctor_first`` (a condition that
makes pressing on the neck risky until a clinician says otherwise). Any red flag, or a
failed inclusion question, means no session.

The questions are data (``QUESTIONS``), each with a stable id used in answers files. This
module holds the logic only; how a question is put to a person (terminal prompt, file,
simulated user) is injected, so ``device`` never imports ``ui`` and never reads a terminal
by itself: without an answers file and without an ``ask`` function, a real device is
refused at once instead of waiting on input that will never come.

Public API (used by the runner and the CLI faces):

- ``QUESTIONS``, ``QUESTION_IDS``, ``get_question(id)``
- ``evaluate(answers, source=..., simulated=False, now=None) -> ScreeningResult``
- ``load_answers_file(path) -> dict[str, bool]``
- ``ask_all(ask) -> dict[str, bool]``
- ``simulated_user_answers() -> dict[str, bool]``
- ``require_screening(device_is_simulated=..., screening_file=..., ask=..., ...)``
- ``ensure_screened(result, device_is_simulated=...)`` (a last check inside the runner)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from device.datafile import loads_json, loads_toml, read_text
from device.errors import InputFileError, ScreeningRefusal, UsageError
from dsp.events import EventKind

#: Bumped whenever a question is added, removed or changes meaning; stored in the record.
QUESTIONS_VERSION = 1


class AdviceTier(StrEnum):
    """How urgent the advice is. Ordered from least to most urgent by ``TIER_ORDER``."""

    #: The pain does not fit what self-massage is for: have it looked at before trying.
    NOT_SUITABLE = "not_suitable"
    #: A condition that needs a clinician's go-ahead before pressure on the neck.
    ASK_DOCTOR_FIRST = "ask_doctor_first"
    #: A symptom that can mean something serious: get medical help now, no massage.
    SEEK_CARE_NOW = "seek_care_now"


TIER_ORDER = (AdviceTier.NOT_SUITABLE, AdviceTier.ASK_DOCTOR_FIRST, AdviceTier.SEEK_CARE_NOW)

#: The advice shown for each tier (our own words).
TIER_ADVICE: Mapping[AdviceTier, str] = MappingProxyType(
    {
        AdviceTier.SEEK_CARE_NOW: (
            "Seek care now: do not massage; contact a doctor, an urgent-care service or "
            "emergency services today, and say which symptoms you have."
        ),
        AdviceTier.ASK_DOCTOR_FIRST: (
            "Ask a doctor first: do not use the device on your neck until a doctor or "
            "physiotherapist has said that massage is safe for you."
        ),
        AdviceTier.NOT_SUITABLE: (
            "This guided massage is only meant for mild, recent muscle tension. Have a "
            "doctor or physiotherapist look at your neck before trying it."
        ),
    }
)


@dataclass(frozen=True)
class Question:
    """One yes/no screening question.

    ``refuse_if`` is the answer that ends screening: True for a red flag ("yes, I have
    it"), False for an inclusion question ("no, it is not mild"). ``reason`` is the short
    text shown when it does.
    """

    id: str
    text: str
    refuse_if: bool
    tier: AdviceTier
    reason: str

    @property
    def is_red_flag(self) -> bool:
        return self.refuse_if is True


_SEEK = AdviceTier.SEEK_CARE_NOW
_ASK = AdviceTier.ASK_DOCTOR_FIRST
_NOT = AdviceTier.NOT_SUITABLE

#: All questions, in the order they are asked: what the pain is, then red flags by urgency.
QUESTIONS: tuple[Question, ...] = (
    Question(
        "mild_pain",
        "Is the pain mild: sore or stiff, but not enough to stop your usual day?",
        False,
        _NOT,
        "the pain is not mild",
    ),
    Question(
        "recent_pain",
        "Did the pain begin recently (within the last few days)?",
        False,
        _NOT,
        "the pain is not recent",
    ),
    Question(
        "muscular_cause",
        "Does it feel like tight or strained muscles, from posture, the way you slept, or stress?",
        False,
        _NOT,
        "the pain does not feel like muscle tension or strain",
    ),
    Question(
        "injury",
        "Did the pain start with an injury, such as a fall, a knock to the head or neck, a "
        "sports impact or a car accident?",
        True,
        _SEEK,
        "the pain followed an injury",
    ),
    Question(
        "sudden_pain",
        "Did the pain come on suddenly, out of nowhere?",
        True,
        _SEEK,
        "the pain started suddenly",
    ),
    Question(
        "severe_pain",
        "Is the pain severe?",
        True,
        _SEEK,
        "the pain is severe",
    ),
    Question(
        "unexplained_pain",
        "Is the pain unexplained: nothing you can think of (posture, sleep, stress, effort) "
        "brought it on?",
        True,
        _SEEK,
        "the pain has no explanation",
    ),
    Question(
        "movement_blocked",
        "Does the pain stop you from turning, tilting or nodding your head?",
        True,
        _SEEK,
        "the pain stops the head from moving",
    ),
    Question(
        "fever",
        "Do you have a fever or feel feverish?",
        True,
        _SEEK,
        "fever together with neck pain",
    ),
    Question(
        "severe_headache",
        "Do you have a severe headache?",
        True,
        _SEEK,
        "severe headache together with neck pain",
    ),
    Question(
        "dizziness",
        "Do you feel dizzy, light-headed or off balance?",
        True,
        _SEEK,
        "dizziness together with neck pain",
    ),
    Question(
        "vision_changes",
        "Has your sight changed: blurred or double vision, flashes, or patches you cannot see?",
        True,
        _SEEK,
        "changes in vision together with neck pain",
    ),
    Question(
        "arm_symptoms",
        "Does pain, numbness, tingling or weakness travel from your neck into an arm or a hand?",
        True,
        _ASK,
        "pain, numbness or weakness spreading into an arm or hand (a nerve may be involved)",
    ),
    Question(
        "osteoporosis",
        "Have you been told you have severe osteoporosis (fragile bones)?",
        True,
        _ASK,
        "severe osteoporosis",
    ),
    Question(
        "blood_clots",
        "Have you had blood clots, or do you take medicine to prevent them?",
        True,
        _ASK,
        "blood clots or clot-prevention treatment",
    ),
    Question(
        "connective_tissue",
        "Do you have a connective-tissue disorder (for example Ehlers-Danlos or Marfan syndrome)?",
        True,
        _ASK,
        "a connective-tissue disorder",
    ),
)

QUESTION_IDS: tuple[str, ...] = tuple(q.id for q in QUESTIONS)
_BY_ID: Mapping[str, Question] = MappingProxyType({q.id: q for q in QUESTIONS})

#: The answers file format, for messages.
ANSWERS_FILE_HELP = (
    "an answers file is TOML or JSON mapping every question id to true or false; "
    "'massagectl screen --questions' lists the ids"
)

#: Printed (and recorded) whenever a simulated user answers: it is never a real person.
SIMULATED_NOTICE = (
    "screening: answered by a SIMULATED user (demo on a simulated device only; a real "
    "device always asks you)"
)

#: Called with a question, returns the person's answer. May raise ScreeningRefusal (e.g. when
#: input ends) or KeyboardInterrupt.
Ask = Callable[[Question], bool]


def get_question(question_id: str) -> Question:
    """The question with this id (KeyError if there is none)."""
    return _BY_ID[question_id]


class ScreeningRefused(ScreeningRefusal):
    """A refusal whose one-line text carries both the reason and the advice.

    ``result`` is the ScreeningResult when the answers themselves refused (None when
    screening could not take place: no terminal, a bad answers file, ...).
    """

    def __init__(
        self, reason: str, advice: str = "", result: ScreeningResult | None = None
    ) -> None:
        super().__init__(reason, advice)
        self.result = result

    def __str__(self) -> str:
        return f"{self.reason}. {self.advice}" if self.advice else self.reason


@dataclass(frozen=True)
class Finding:
    """One answer that refused: which question, why, and how urgent."""

    question_id: str
    reason: str
    tier: AdviceTier


@dataclass(frozen=True)
class ScreeningResult:
    """The outcome of one screening: stored with the session recording via ``to_record``."""

    passed: bool
    findings: tuple[Finding, ...]
    #: The most urgent tier among the findings; None when passed.
    tier: AdviceTier | None
    advice: str
    answers: Mapping[str, bool]
    #: Where the answers came from: "interactive", "file:<path>" or "simulated_user".
    source: str
    simulated: bool
    #: Wall-clock time of the decision, seconds since the epoch (UTC).
    t_unix_s: float
    questions_version: int = QUESTIONS_VERSION

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f.reason for f in self.findings)

    @property
    def timestamp_utc(self) -> str:
        return datetime.fromtimestamp(self.t_unix_s, UTC).isoformat(timespec="seconds")

    def summary(self) -> str:
        """One line: passed, or the reasons and the advice."""
        if self.passed:
            note = " (simulated user)" if self.simulated else ""
            return f"screening passed{note}"
        return f"no session: {'; '.join(self.reasons)}. {self.advice}"

    def to_refusal(self) -> ScreeningRefused:
        """The exception to raise for a refused result (ValueError if it passed)."""
        if self.passed:
            raise ValueError("screening passed: nothing to refuse")
        return ScreeningRefused(f"no session: {'; '.join(self.reasons)}", self.advice, self)

    def raise_if_refused(self) -> ScreeningResult:
        """Return self when passed; raise ``ScreeningRefused`` otherwise."""
        if not self.passed:
            raise self.to_refusal()
        return self

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict for ``session.json`` and the ``screening`` event."""
        return {
            "kind": EventKind.SCREENING.value,
            "passed": self.passed,
            "tier": None if self.tier is None else self.tier.value,
            "advice": self.advice,
            "reasons": list(self.reasons),
            "findings": [
                {"id": f.question_id, "reason": f.reason, "tier": f.tier.value}
                for f in self.findings
            ],
            "answers": {qid: self.answers[qid] for qid in QUESTION_IDS if qid in self.answers},
            "source": self.source,
            "simulated": self.simulated,
            "t_unix_s": self.t_unix_s,
            "timestamp_utc": self.timestamp_utc,
            "questions_version": self.questions_version,
        }


def _most_urgent(tiers: list[AdviceTier]) -> AdviceTier:
    return max(tiers, key=TIER_ORDER.index)


def check_answers(answers: Mapping[str, Any], origin: str = "answers") -> dict[str, bool]:
    """Every question answered, nothing unknown, every answer a boolean.

    Raises ``ScreeningRefused`` naming the unknown, missing or non-boolean ids: an
    incomplete set of answers is never taken as a pass.
    """
    unknown = sorted(k for k in answers if k not in _BY_ID)
    if unknown:
        raise ScreeningRefused(
            f"{origin}: unknown screening question id(s): {', '.join(map(str, unknown))}",
            f"Known ids: {', '.join(QUESTION_IDS)}",
        )
    missing = [qid for qid in QUESTION_IDS if qid not in answers]
    if missing:
        raise ScreeningRefused(
            f"{origin}: screening incomplete, no answer for: {', '.join(missing)}",
            f"Every question must be answered; {ANSWERS_FILE_HELP}",
        )
    not_bool = [qid for qid in QUESTION_IDS if not isinstance(answers[qid], bool)]
    if not_bool:
        raise ScreeningRefused(
            f"{origin}: answers must be true or false, not for: {', '.join(not_bool)}",
            ANSWERS_FILE_HELP,
        )
    return {qid: answers[qid] for qid in QUESTION_IDS}


def evaluate(
    answers: Mapping[str, Any],
    *,
    source: str,
    simulated: bool = False,
    now: Callable[[], float] = time.time,
) -> ScreeningResult:
    """Decide on a complete set of answers. Refusing answers give a result with
    ``passed=False`` (no exception); missing or unknown answers raise ``ScreeningRefused``.
    """
    checked = check_answers(answers, source)
    findings = tuple(
        Finding(q.id, q.reason, q.tier) for q in QUESTIONS if checked[q.id] == q.refuse_if
    )
    if findings:
        tier = _most_urgent([f.tier for f in findings])
        advice = TIER_ADVICE[tier]
    else:
        tier, advice = None, ""
    return ScreeningResult(
        passed=not findings,
        findings=findings,
        tier=tier,
        advice=advice,
        answers=MappingProxyType(checked),
        source=source,
        simulated=simulated,
        t_unix_s=float(now()),
    )


def load_answers_file(path: str | Path) -> dict[str, bool]:
    """Read an answers file (TOML or JSON, chosen by suffix; other suffixes try both).

    Any problem (missing file, bad syntax, not a table) raises ``ScreeningRefused`` with the
    file name; completeness is checked by ``check_answers``.
    """
    p = Path(path)
    try:
        text = read_text(p, what="screening answers")
    except InputFileError as exc:
        raise ScreeningRefused(f"cannot read screening answers: {exc}", ANSWERS_FILE_HELP) from None
    suffix = p.suffix.lower()
    parsers: list[Callable[[str, str], Any]] = []
    if suffix == ".json":
        parsers = [loads_json]
    elif suffix == ".toml":
        parsers = [loads_toml]
    else:
        parsers = [loads_toml, loads_json]
    errors = []
    data: Any = None
    for parse in parsers:
        try:
            data = parse(text, str(p))
            break
        except InputFileError as exc:
            errors.append(str(exc).removeprefix(f"{p}: "))
    else:
        raise ScreeningRefused(f"{p}: {'; '.join(errors)}", ANSWERS_FILE_HELP)
    if not isinstance(data, dict):
        raise ScreeningRefused(f"{p}: expected a table of answers", ANSWERS_FILE_HELP)
    return check_answers(data, str(p))


def ask_all(ask: Ask) -> dict[str, bool]:
    """Put every question to ``ask``, in order. Every question is asked, so that the record
    is complete and the advice is the most urgent that applies."""
    answers: dict[str, bool] = {}
    for q in QUESTIONS:
        answer = ask(q)
        if not isinstance(answer, bool):
            raise TypeError(f"ask() must return a bool, got {answer!r} for {q.id}")
        answers[q.id] = answer
    return answers


def simulated_user_answers() -> dict[str, bool]:
    """The answers of the demo's simulated user: a passing screen. Demo only."""
    return {q.id: not q.refuse_if for q in QUESTIONS}


def require_screening(
    *,
    device_is_simulated: bool,
    screening_file: str | Path | None = None,
    ask: Ask | None = None,
    simulated_user: bool = False,
    announce: Callable[[str], None] | None = None,
    now: Callable[[], float] = time.time,
) -> ScreeningResult | None:
    """Run the gate before a session drives vibration. Returns the passed result, or None
    when screening was skipped (a simulated device with no way to ask, which is allowed).

    The source of answers, first that applies:

    1. ``screening_file``: an answers file (unattended runs; any device).
    2. ``ask``: an interactive asker. The caller passes one only when stdin is a terminal
       (``ui.screening_prompt.terminal_asker`` does the ``isatty`` check).
    3. ``simulated_user``: the demo's simulated person; only for a simulated device, and
       ``announce`` is called with ``SIMULATED_NOTICE`` so that it is never hidden.
    4. Nothing: a simulated device skips screening (None); a real device is refused at once.

    Raises ``ScreeningRefused`` (a ``ScreeningRefusal``) for any refusal: red flag, failed
    inclusion, incomplete or unknown answers, or no way to ask. ``exc.result`` holds the
    result when the answers themselves refused. ``UsageError`` if a simulated user is asked
    for on a real device.
    """
    if simulated_user and not device_is_simulated:
        raise UsageError("a simulated user may only answer screening for a simulated device")
    if screening_file is not None:
        answers = load_answers_file(screening_file)
        result = evaluate(answers, source=f"file:{screening_file}", now=now)
    elif ask is not None:
        result = evaluate(ask_all(ask), source="interactive", now=now)
    elif simulated_user:
        if announce is not None:
            announce(SIMULATED_NOTICE)
        result = evaluate(
            simulated_user_answers(), source="simulated_user", simulated=True, now=now
        )
    elif device_is_simulated:
        return None
    else:
        raise ScreeningRefused(
            "screening is required before a real device vibrates, and there is no terminal "
            "to ask in and no answers file",
            "Run in a terminal to answer the questions, or pass --screening FILE "
            f"({ANSWERS_FILE_HELP})",
        )
    return result.raise_if_refused()


def ensure_screened(result: ScreeningResult | None, *, device_is_simulated: bool) -> None:
    """The runner's last check before the first vibration command: a real device needs a
    passed, non-simulated screening. Raises ``ScreeningRefused`` otherwise."""
    if device_is_simulated:
        if result is not None:
            result.raise_if_refused()
        return
    if result is None:
        raise ScreeningRefused(
            "no screening for a real device", "Answer the screening questions first"
        )
    result.raise_if_refused()
    if result.simulated:
        raise ScreeningRefused(
            "a simulated user's screening cannot start a real device",
            "Answer the screening questions yourself",
        )
