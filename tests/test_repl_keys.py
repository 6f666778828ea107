"""The prompt's key bindings, driven through a pipe (no terminal): the Enter rule, Alt-Enter, vi keys."""

import io

import pytest
from cryptodb.repl.catalog import CatalogSnapshot
from cryptodb.repl.config import ReplConfig
from cryptodb.repl.prompt import build_prompt
from cryptodb.repl.refresher import CatalogRefresher
from cryptodb.repl.session import ReplSession
from prompt_toolkit.enums import EditingMode
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput


@pytest.fixture
def refresher():
    r = CatalogRefresher(CatalogSnapshot).start()
    yield r
    r.stop()


def _prompt(refresher, pipe, **settings):
    session = ReplSession(None, ReplConfig(**settings), io.StringIO(), io.StringIO())
    return build_prompt(session, refresher, "test", history=InMemoryHistory(), input=pipe, output=DummyOutput())


def test_enter_waits_for_the_semicolon(refresher):
    with create_pipe_input() as pipe:
        prompt = _prompt(refresher, pipe, complete_while_typing=False)
        pipe.send_text("SELECT 1\r;\r")
        assert prompt.prompt() == "SELECT 1\n;"
        pipe.send_text("SELECT ';'\r, 2;\r")
        assert prompt.prompt() == "SELECT ';'\n, 2;", "a ; inside a string does not end the statement"


def test_commands_run_on_enter_and_alt_enter_forces_a_run(refresher):
    with create_pipe_input() as pipe:
        prompt = _prompt(refresher, pipe, complete_while_typing=False)
        pipe.send_text(".tables\r")
        assert prompt.prompt() == ".tables"
        pipe.send_text("SELECT 2\x1b\r")
        assert prompt.prompt() == "SELECT 2"


def test_vi_keys(refresher):
    with create_pipe_input() as pipe:
        prompt = _prompt(refresher, pipe, key_bindings="vi", complete_while_typing=False)
        assert prompt.editing_mode == EditingMode.VI
        pipe.send_text("SELECT 3 x\x1bxa;\r")  # Esc, x deletes the last character, a appends
        assert prompt.prompt() == "SELECT 3 ;"
