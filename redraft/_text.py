"""Text shown to people: one rule for cutting it short."""

from __future__ import annotations


def clip(text: str, limit: int = 80) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters, with an
    ellipsis when anything was cut (a message quotes a claim or a prompt, never a whole page).

    Example:
        >>> clip("The Eiffel Tower is a famous landmark in Paris, France.", 30)
        'The Eiffel Tower is a famous…'
        >>> clip("short"), clip("x" * 12, 5)
        ('short', 'xxxx…')
    """
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:  # a word boundary not too far back; else cut mid-word
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def same_text(a: str, b: str) -> bool:
    """Whether two drafts are the same text once whitespace is normalized.

    Example:
        >>> same_text("Paris.\\n", "  Paris. "), same_text("Paris.", "paris.")
        (True, False)
    """
    return " ".join(a.split()) == " ".join(b.split())
