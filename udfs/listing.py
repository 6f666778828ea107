"""Every kernel, window and row-wise, described for people: `cryptodb kernels`, `.kernels`, docs."""

from __future__ import annotations

from . import registry, rowwise


def describe_all() -> list[dict]:
    """One row per callable name: window kernels, their field aliases, row-wise macros."""
    rows = []
    for name, spec in registry.kernels().items():
        rows.append({"name": name, "kind": "window", "category": spec.category,
                     "signature": spec.signature(), "reference": spec.reference, "doc": spec.doc})
    for alias, (kernel, field) in sorted(registry.aliases().items()):
        spec = registry.kernels()[kernel]
        out = next(o for o in spec.outputs if o.name == field)
        rows.append({"name": alias, "kind": "window", "category": spec.category,
                     "signature": spec.signature().split(" -> ")[0].replace(kernel, alias, 1) + f" -> {out.type}",
                     "reference": spec.reference, "doc": f"field {field!r} of {kernel}: {spec.doc}"})
    for unit in rowwise.ROW_KERNELS:
        rows.append({"name": unit.name, "kind": "row", "category": unit.category,
                     "signature": unit.signature(), "reference": "formula", "doc": unit.doc})
    return sorted(rows, key=lambda r: (r["kind"] != "window", r["category"], r["name"]))


REFERENCES = {"T": "equals TA-Lib's function of the same name (values and leading NULLs)",
              "P": "checked against a two-pass numpy/pandas reference",
              "L": "the cited paper's formula", "formula": "the closed-form formula"}


def describe(name: str) -> str:
    """The full text for one kernel: signature, meaning, parameters, outputs, how to call it."""
    key = name.lower()
    found = registry.resolve(key)
    if found is not None:
        spec, field = found
        lines = [spec.signature() if field is None else f"{key}: field {field!r} of {spec.signature()}",
                 "", spec.doc, ""]
        lines.append("inputs:  " + ", ".join(spec.inputs))
        for p in spec.params:
            kind = "INTEGER rows or INTERVAL" if p.kind == "window" else p.kind
            extra = f", must be {p.check}" if p.check else ""
            lines.append(f"  {p.signature():<28} {kind}{extra}{'  ' + p.doc if p.doc else ''}")
        if spec.is_struct:
            lines.append("returns: STRUCT(" + ", ".join(f"{o.name} {o.type}" for o in spec.outputs) + ")")
            if spec.field_aliases:
                lines.append("fields also callable as: " + ", ".join(sorted(spec.field_aliases)))
        lines.append(f"checked: {REFERENCES[spec.reference]}")
        args = ", ".join(spec.inputs)
        lines += ["", f"example: SELECT {key}({args}) OVER (PARTITION BY symbol ORDER BY ts) FROM ticks"]
        return "\n".join(lines)
    for unit in rowwise.ROW_KERNELS:
        if unit.name == key:
            return "\n".join([unit.signature(), "", unit.doc, "",
                              "a row-wise SQL macro stored in the catalog: any DuckDB client can call it",
                              f"definition: {unit.body}"])
    raise KeyError(name)


def markdown() -> str:
    """docs/kernels.md: every kernel by kind and category (regenerate with `make docs`)."""
    lines = ["# Kernels", "",
             "Generated from the registry by `make docs`; `cryptodb kernels NAME` shows one in full.",
             "Window kernels are called as `name(args) OVER (PARTITION BY ... ORDER BY ts)`; row-wise",
             "kernels are SQL macros stored in the catalog, callable from any DuckDB client.", ""]
    rows = describe_all()
    for kind, title in (("window", "Window kernels"), ("row", "Row-wise kernels (SQL macros)")):
        lines += [f"## {title}", "", "| name | category | signature | checked against | meaning |",
                  "|---|---|---|---|---|"]
        for r in (r for r in rows if r["kind"] == kind):
            lines.append(f"| `{r['name']}` | {r['category']} | `{_cell(r['signature'])}` | "
                         f"{_checked(r['reference'])} | {_cell(r['doc'])} |")
        lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|")


def _checked(reference: str) -> str:
    return {"T": "TA-Lib", "P": "numpy/pandas", "L": "paper", "formula": "formula"}[reference]
