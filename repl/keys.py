"""Key bindings beyond prompt_toolkit's emacs and vi sets: Enter follows the Enter rule.

- Enter with a completion selected in the menu takes it (and runs nothing);
- Enter runs the input when `ready_to_run` says so, else starts a new line;
- Alt-Enter (Esc then Enter) runs the input as it is, `;` or not.
Ctrl-R (history search), Ctrl-X Ctrl-E (edit in $EDITOR) and the rest come with prompt_toolkit.
"""

from __future__ import annotations

from prompt_toolkit.enums import DEFAULT_BUFFER
from prompt_toolkit.filters import has_focus
from prompt_toolkit.key_binding import KeyBindings

from .enter_rule import ready_to_run


def repl_key_bindings() -> KeyBindings:
    bindings = KeyBindings()
    editing = has_focus(DEFAULT_BUFFER)

    @bindings.add("enter", filter=editing)
    def _enter(event) -> None:
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is not None:
            buffer.apply_completion(state.current_completion)
            return
        if ready_to_run(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.newline(copy_margin=True)  # keep the line's indentation

    @bindings.add("escape", "enter", filter=editing)
    def _force_run(event) -> None:
        event.current_buffer.validate_and_handle()

    return bindings
