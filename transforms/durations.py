"""The one duration grammar of the config, feeds lists and the CLI: ``90``, ``30s``, ``5m``..."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | float | int) -> float:
    """Seconds in a duration such as ``90``, ``30s``, ``5m``, ``2h`` or ``1d``.

    Raises:
        ValueError: the text is not a non-negative number with an optional unit.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"duration must not be negative, got {text}")
        return float(text)
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 2h, 1d)")
    return float(match.group(1)) * _UNIT_S[(match.group(2) or "s").lower()]
