"""When Enter runs the input and when it starts a new line (the rule litecli and pgcli use).

- A special command (`.tables`, `\\dt`, `watch 5 ...`, `quit`) is one line: Enter runs it.
- SQL runs when its last significant token is a `;` outside strings and comments, so a
  statement can be typed over several lines; Alt-Enter runs the input as it is.
- Enter on an empty input runs nothing (a fresh prompt).
"""

from __future__ import annotations

from .commands import is_special
from .sqltext import ends_statement


def ready_to_run(text: str) -> bool:
    stripped = text.strip()
    if not stripped or is_special(stripped):
        return True
    return ends_statement(text)
