"""Mode scripts: find them by name or path, and hand their parameters to DuckDB as variables.

A script reads a parameter with `getvariable('name')`, and gives it a default with
`SET VARIABLE name = coalesce(getvariable('name'), <default>);` at its top. Where SQL wants a
literal rather than an expression (a COPY target, a table name), `${name}` or
`${name:-default}` is replaced by the parameter's text before the script runs.

A line `-- @include NAME` is replaced by the text of script NAME (a shipped name, or a path
relative to the including file): research and live share one feature query this way. To any
other SQL tool the line is a comment.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from cryptodb.errors import CryptodbError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INCLUDE = re.compile(r"^[ \t]*--[ \t]*@include[ \t]+(\S+)[ \t]*$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def shipped_scripts() -> list[str]:
    folder = resources.files("cryptodb.sql")
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".sql"))


def find_script(path_or_name: str | Path) -> tuple[str, str]:
    """Return (where it came from, its text, includes expanded) for a file path or the name of a
    shipped script."""
    where, text = _read_script(path_or_name)
    return where, expand_includes(text, where)


def expand_includes(text: str, where: str, seen: tuple[str, ...] = ()) -> str:
    def include(m: re.Match) -> str:
        name = m.group(1)
        local = Path(where).parent / name
        target = local if not where.startswith("sql/") and local.is_file() else Path(name).stem
        inner_where, inner = _read_script(target)
        if inner_where in seen + (where,):
            raise CryptodbError(f"{where}: `@include {name}` includes itself")
        return expand_includes(inner, inner_where, seen + (where,)).rstrip().rstrip(";")

    return _INCLUDE.sub(include, text)


def _read_script(path_or_name: str | Path) -> tuple[str, str]:
    path = Path(path_or_name)
    if path.suffix == ".sql" or path.exists():
        if not path.is_file():
            raise CryptodbError(f"no script file {path}")
        return str(path), path.read_text()
    name = str(path_or_name)
    shipped = resources.files("cryptodb.sql") / f"{name}.sql"
    if not shipped.is_file():
        raise CryptodbError(
            f"no script {name!r}: give a .sql file path or one of: {', '.join(shipped_scripts()) or '(none)'}"
        )
    return f"sql/{name}.sql", shipped.read_text()


def parse_value(text: str):
    """'14' -> 14, '0.5' -> 0.5, 'true' -> True, anything else stays a string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_params(pairs: list[str] | None) -> dict:
    """CLI `--param name=value` pairs -> {name: typed value}."""
    params = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not _NAME.match(name):
            raise CryptodbError(f"--param wants name=value with a plain name, got {pair!r}")
        params[name] = parse_value(value)
    return params


def check_param_name(name: str) -> str:
    if not _NAME.match(name):
        raise CryptodbError(f"parameter name {name!r} is not a plain identifier")
    return name


def fill_placeholders(text: str, params: dict, where: str = "script") -> str:
    """Replace `${name}` / `${name:-default}` with the parameter's text."""

    def value(m: re.Match) -> str:
        name, default = m.group(1), m.group(2)
        if name in params:
            v = params[name]
            return str(v).lower() if isinstance(v, bool) else str(v)
        if default is not None:
            return default
        raise CryptodbError(f"{where} needs a value for ${{{name}}}: pass --param {name}=...")

    return _PLACEHOLDER.sub(value, text)
