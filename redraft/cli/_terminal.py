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

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 controls except tab and newline, DEL, and the C1 range (U+0080–U+009F, where CSI is U+009B)."""


def term_safe(text: str) -> str:
    r"""``text`` with every control character that could drive a terminal shown as an escape.

    Example:
        >>> term_safe("ok\x1b]0;pwned\x07 \x9b2J\ttab\nline")
        'ok\\x1b]0;pwned\\x07 \\x9b2J\ttab\nline'
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


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
        >>> console(file=out).print("draft: \x1b[2Jgone")
        >>> out.getvalue()
        'draft: \\x1b[2Jgone\n'
    """
    return SafeConsole(**kwargs)
