"""Text from data (object keys, model output, error messages) made inert for a terminal.

A key is data: ANSI escape sequences in it must not recolour or move the cursor, a newline
must not split a progress line, a bidirectional override must not reverse what follows.
Control characters become visible escapes, and rich's markup is escaped too.
"""

from __future__ import annotations

import re

from rich.markup import escape

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 and C1 controls, DEL, and the bidirectional embeddings, overrides and isolates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """Every control character as an escape a reader can see (`\\x1b`, `\\n`, `\\u202e`)."""

    def show(m: re.Match[str]) -> str:
        ch = m.group()
        if ch in _NAMED:
            return _NAMED[ch]
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"

    return _UNSAFE.sub(show, text)


def inert(text: object) -> str:
    """For rich: control characters visible, markup escaped."""
    return escape(visible(str(text)))
