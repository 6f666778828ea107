"""REPL settings and where they come from.

Search order (later files override earlier ones, key by key): the user config dir
(`$XDG_CONFIG_HOME/cryptodb/config.toml`, else `~/.config/cryptodb/config.toml`), then the
project's `pyproject.toml` `[tool.cryptodb.repl]`, then the project's `cryptodb.toml` `[repl]`.
The project is the nearest directory, from the current one upward, holding either file. TOML is
read with `tomllib` (Python 3.11+) or `tomli` when installed; without either, file config is
skipped with a warning rather than failing the REPL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

MODES = ("table", "csv", "json", "jsonl", "markdown", "vertical")


@dataclass
class ReplConfig:
    key_bindings: str = "emacs"  # emacs | vi
    style: str = "default"  # a Pygments style name
    colors: dict = field(default_factory=dict)  # prompt_toolkit style rules over the style, e.g. {"prompt": "bold"}
    max_rows: int = 1000  # display cap (0: show every row); .maxrows changes it
    pager: str | None = None  # None: $CRYPTODB_PAGER, else "less -SRXF"; "" turns paging off
    startup_sql: str = ""  # run after connecting (SQL and dot commands)
    timer: bool = True
    mode: str = "table"
    complete_while_typing: bool = True
    toolbar: bool = True
    # Where the values came from, and what was wrong with them (shown at startup).
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# The type each setting takes in a file (pager = false also turns paging off).
_TYPES = {"key_bindings": str, "style": str, "colors": dict, "max_rows": int, "pager": str, "startup_sql": str,
          "timer": bool, "mode": str, "complete_while_typing": bool, "toolbar": bool}
_CHOICES = {"key_bindings": ("emacs", "vi"), "mode": MODES}


def _toml_loader():
    try:
        import tomllib
    except ModuleNotFoundError:
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            return None
    return tomllib.load


def user_config_dir(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "cryptodb"


def state_dir(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base) / "cryptodb"


def history_path(env: Mapping[str, str] = os.environ) -> Path:
    return state_dir(env) / "history"


def project_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / "cryptodb.toml").is_file() or (folder / "pyproject.toml").is_file():
            return folder
    return None


def config_files(cwd: Path, env: Mapping[str, str] = os.environ) -> list[tuple[Path, tuple[str, ...]]]:
    """(file, keys leading to the REPL table) in increasing precedence."""
    found = [(user_config_dir(env) / "config.toml", ("repl",))]
    project = project_dir(cwd)
    if project is not None:
        found += [(project / "pyproject.toml", ("tool", "cryptodb", "repl")), (project / "cryptodb.toml", ("repl",))]
    return [(path, keys) for path, keys in found if path.is_file()]


def _apply(config: ReplConfig, values: dict, where: str) -> None:
    for key, value in values.items():
        expected = _TYPES.get(key)
        if expected is None:
            config.warnings.append(f"{where}: unknown setting {key!r} (known: {', '.join(_TYPES)})")
            continue
        if key == "startup_sql" and isinstance(value, list):
            value = "\n".join(str(v) for v in value)
        if key == "pager" and value is False:
            value = ""
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            config.warnings.append(f"{where}: {key} wants a {expected.__name__}, got {value!r}")
            continue
        if key in _CHOICES and value not in _CHOICES[key]:
            config.warnings.append(f"{where}: {key} is one of {', '.join(_CHOICES[key])}, got {value!r}")
            continue
        if key == "max_rows" and value < 0:
            config.warnings.append(f"{where}: max_rows is 0 (every row) or more, got {value}")
            continue
        setattr(config, key, value)


def load_config(cwd: Path | None = None, env: Mapping[str, str] = os.environ) -> ReplConfig:
    config = ReplConfig()
    files = config_files(cwd or Path.cwd(), env)
    if not files:
        return config
    load = _toml_loader()
    if load is None:
        config.warnings.append(f"config file(s) {', '.join(str(p) for p, _ in files)} skipped: "
                               "reading TOML on Python 3.10 needs `pip install tomli`")
        return config
    for path, keys in files:
        try:
            with open(path, "rb") as f:
                data = load(f)
        except (OSError, ValueError) as e:  # tomllib.TOMLDecodeError is a ValueError
            config.warnings.append(f"{path}: not read: {e}")
            continue
        for key in keys:
            data = data.get(key) if isinstance(data, dict) else None
        if data is None:
            continue
        if not isinstance(data, dict):
            config.warnings.append(f"{path}: [{'.'.join(keys)}] should be a table")
            continue
        _apply(config, data, f"{path} [{'.'.join(keys)}]")
        config.sources.append(str(path))
    return config
