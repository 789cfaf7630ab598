"""Text that cannot drive a terminal: every console redraft prints through shows control
characters as visible escapes.

Model output, prompts, dataset rows and server messages are untrusted. Printed raw, an escape
sequence in them sets the window title (OSC 0), writes the clipboard (OSC 52), clears the screen
or fakes coloured "all critics passed" text. Rich strips a few control codes (BEL, backspace, CR)
but keeps ESC and the C1 range, so :class:`SafeConsole` renders each such character as ``\\x1b``
etc. before Rich parses the string. Rich's own styling is added after, so colours still work.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.text import Text

_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 controls but tab and newline, DEL, C1 (CSI is U+009B)
    "\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069"  # zero-width, direction marks, bidi embeds and isolates
    "\u2028\u2029\u2060\ufeff"  # line and paragraph separators, word joiner, BOM
    "\U000e0000-\U000e007f]"  # tag characters: invisible text
)
"""Characters that move, hide or reorder what a terminal shows: an override (U+202E) prints a
claim backwards, tags and zero-width characters carry text no one sees."""


def term_safe(text: str) -> str:
    r"""``text`` with every character that could drive a terminal or hide text shown as an escape.

    Example:
        >>> term_safe("ok\x1b]0;pwned\x07 \x9b2J\ttab\nline")
        'ok\\x1b]0;pwned\\x07 \\x9b2J\ttab\nline'
        >>> term_safe("txet desrever\u202e, zero\u200bwidth, tag\U000e0041")
        'txet desrever\\u202e, zero\\u200bwidth, tag\\U000e0041'
    """
    return _CONTROL.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


class SafeConsole(Console):
    """A Rich console whose every printed string passes through :func:`term_safe` (strings
    printed, and strings in tables and panels, all reach Rich as :meth:`render_str`)."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(term_safe(text), **kwargs)


def console(**kwargs: Any) -> Console:
    r"""The console every redraft command and progress display prints through.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> console(file=out).print("draft: \x1b[2Jgone :white_check_mark:")
        >>> out.getvalue()
        'draft: \\x1b[2Jgone :white_check_mark:\n'
    """
    # emoji=False: ":white_check_mark:" in model text stays text, not a check mark.
    return SafeConsole(**{"emoji": False, **kwargs})
