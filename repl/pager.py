"""Results taller or wider than the terminal go through a pager, as in psql and pgcli.

`less -SRXF`: -S chops long lines (scroll sideways instead of wrapping a wide table into noise),
-R passes colours, -X leaves the output on screen after quitting, -F exits at once when the text
fits, so a pager never costs a keypress for a short result.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from typing import Mapping, TextIO

DEFAULT_PAGER = "less -SRXF"


def pager_command(configured: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """$CRYPTODB_PAGER, else the config's `pager`, else less -SRXF; empty means no pager."""
    if "CRYPTODB_PAGER" in env:
        command = env["CRYPTODB_PAGER"]
    elif configured is not None:
        command = configured
    else:
        command = DEFAULT_PAGER if shutil.which("less") else ""
    return command.strip() or None


def too_big(text: str, columns: int, lines: int) -> bool:
    """Would `text` scroll off a `columns` x `lines` screen (keeping a line for the prompt)?"""
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    return len(rows) > lines - 1 or any(len(r) > columns for r in rows)


def page(text: str, command: str, out: TextIO) -> None:
    """Show `text` through `command`; print it directly when the pager cannot start."""
    out.flush()
    try:
        subprocess.run(shlex.split(command), input=text, text=True, check=False,
                       env={**os.environ, "LESSCHARSET": os.environ.get("LESSCHARSET", "utf-8")})
    except (OSError, ValueError):  # not installed, or a malformed command line
        out.write(text)
    except KeyboardInterrupt:  # Ctrl-C in the pager: back to the prompt
        pass
