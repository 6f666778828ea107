"""The interactive prompt: prompt_toolkit wired to the session, completer, lexer and key bindings.

Everything prompt_toolkit-specific lives here and in completer.py, keys.py and lexer.py; the
session underneath knows nothing of terminals, which is what lets the tests drive it directly.
"""

from __future__ import annotations

import logging

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.enums import EditingMode
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.shortcuts import CompleteStyle
from prompt_toolkit.styles import Style, merge_styles, style_from_pygments_cls

from .completer import ReplCompleter
from .config import ReplConfig, history_path
from .keys import repl_key_bindings
from .lexer import lexer_class

log = logging.getLogger("cryptodb")

PROMPT = "cryptodb> "
BASE_STYLE = {
    "prompt": "bold ansigreen",
    "continuation": "ansigray",
    "pygments.name.function.kernel": "bold ansimagenta",
    "pygments.keyword.pseudo": "bold ansicyan",  # special commands
    "bottom-toolbar": "noreverse bg:ansiblack ansigray",
    "completion-menu.meta.completion": "bg:#444444 #dddddd",
    "completion-menu.meta.completion.current": "bg:#888888 #000000",
}


def _style(config: ReplConfig):
    from pygments.styles import get_style_by_name
    from pygments.util import ClassNotFound

    try:
        pygments_style = get_style_by_name(config.style)
    except ClassNotFound:
        config.warnings.append(f"style {config.style!r} is not a Pygments style: using the default")
        pygments_style = get_style_by_name("default")
    try:
        overrides = Style.from_dict(config.colors)
    except (ValueError, AssertionError) as e:
        config.warnings.append(f"colors: {e}")
        overrides = Style.from_dict({})
    return merge_styles([style_from_pygments_cls(pygments_style), Style.from_dict(BASE_STYLE), overrides])


def _history():
    path = history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        return FileHistory(str(path))
    except OSError as e:
        log.warning("history not kept: cannot write %s (%s)", path, e)
        return InMemoryHistory()


def build_prompt(session, refresher, label: str, history=None, **terminal) -> PromptSession:
    """The prompt_toolkit session; `terminal` (input=, output=) lets tests drive it from a pipe."""
    config = session.settings

    def toolbar():
        s = session.settings
        return (f" {label} │ .mode {s.mode} │ .maxrows {s.max_rows or 'all'} │ .timer {'on' if s.timer else 'off'} │ "
                f"{config.key_bindings} │ ; or Alt-Enter runs · Tab completes · Ctrl-R history · Ctrl-D exits")

    def continuation(width, line_number, is_soft_wrap):
        return [("class:continuation", "-> ".rjust(width))]

    return PromptSession(
        message=[("class:prompt", PROMPT)],
        multiline=True,
        prompt_continuation=continuation,
        lexer=PygmentsLexer(lexer_class(lambda: refresher.snapshot.kernel_names)),
        completer=ReplCompleter(lambda: refresher.snapshot, refresher.loaded.wait),
        complete_in_thread=True,
        complete_while_typing=config.complete_while_typing,
        complete_style=CompleteStyle.COLUMN,
        history=history if history is not None else _history(),
        auto_suggest=AutoSuggestFromHistory(),
        search_ignore_case=True,
        key_bindings=repl_key_bindings(),
        editing_mode=EditingMode.VI if config.key_bindings == "vi" else EditingMode.EMACS,
        style=_style(config),
        include_default_pygments_style=False,
        bottom_toolbar=toolbar if config.toolbar else None,
        enable_open_in_editor=True,
        reserve_space_for_menu=8,
        **terminal,
    )


def run_interactive(session, refresher, label: str) -> None:
    prompt = build_prompt(session, refresher, label)
    for warning in session.settings.warnings:
        session.note(f"config: {warning}")
    session.settings.warnings.clear()

    def start_refresher() -> None:  # once the prompt is drawing: the catalog load does not delay it
        if not refresher.started:
            refresher.start()

    while not session.quit_requested:
        try:
            text = prompt.prompt(default=session.next_input, pre_run=start_refresher)
        except KeyboardInterrupt:  # Ctrl-C at the prompt drops the input, as in a shell
            session.next_input = ""
            continue
        except EOFError:  # Ctrl-D
            break
        session.next_input = ""
        try:
            session.run_input(text)
        except KeyboardInterrupt:
            session.note("interrupted")
