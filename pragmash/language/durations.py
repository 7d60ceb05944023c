"""Durations as recipes write them: ``300``, ``90s``, ``5m``, ``1.5m``, ``1h``.

One place for the syntax so the parser (which rejects ``wait 5x`` early), the
interpreter (which waits) and the journal (which shows ``5m``) agree.
"""

from __future__ import annotations

import math
import re

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?P<unit>[smh]?)")

DURATION_EXAMPLES = "300, 90s, 5m or 1h"
#: The longest wait or timeout a recipe may ask for. Anything longer is a typo (a
#: missing unit, a stray digit) that would otherwise hold a run, its leases and its
#: VC lock for days before anyone noticed.
MAX_SECONDS = 7 * 24 * 3600.0


class DurationTooLong(ValueError):
    """A well-formed duration beyond :data:`MAX_SECONDS`."""


def parse_duration(text: str) -> float:
    """Seconds in ``text``; a bare number is seconds, as in pragma_boot's clock waits."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: expected a duration like {DURATION_EXAMPLES}"
        )
    seconds = float(match["number"]) * _UNITS[match["unit"]]
    if seconds > MAX_SECONDS:
        raise DurationTooLong(
            f"{text.strip()!r} is longer than a week ({format_duration(MAX_SECONDS)}); "
            "pragmash refuses to wait that long: did you mean another unit?"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest recipe spelling of ``seconds`` (``300`` -> ``5m``), for messages and journals."""
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number of seconds >= 0, not {seconds!r}")
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{_number(seconds / size)}{unit}"
    return f"{_number(seconds)}s"


def _number(value: float) -> str:
    """``5`` not ``5.0``, ``1.5`` not ``1.500``, and never an exponent."""
    if value == int(value):
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")
