"""The interactive SQL shell, `cryptodb repl` (installed as `cryptodb.repl`).

One concept per module, in the anatomy of litecli and pgcli:

- `app`         the command: open the database (offering read-only when it is locked), run the
                prompt or piped input;
- `session`     the REPL without a terminal: input in, results and messages out;
- `enter_rule`  when Enter runs the input; `sqltext` the tolerant SQL tokenizer under it;
- `commands`    the registry of special commands (`.tables`, `\\dt`, ...);
- `completion`  the pure completion engine (text -> suggestions) over a `catalog` snapshot, which
                `refresher` reloads in the background; `completer` adapts it to prompt_toolkit;
- `prompt`, `keys`, `lexer`  prompt_toolkit wiring, key bindings, highlighting;
- `cancel`      Ctrl-C for running queries; `pager`, `plot`, `error_report`, `config`.

Importing this package imports nothing; prompt_toolkit loads with `prompt`, `completer`, `keys`.
"""
