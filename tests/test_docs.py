"""Documentation that cannot drift: every kernel and every command is documented."""

from pathlib import Path

from cryptodb.udfs.listing import markdown

import cryptodb
from cryptodb.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent


def test_kernel_reference_is_generated_from_the_registry():
    doc = ROOT / "docs" / "kernels.md"
    assert doc.read_text() == markdown() + "\n", "docs/kernels.md is stale: run `make docs`"


def test_every_kernel_has_a_doc_and_a_listing_row():
    names = [r["name"] for r in cryptodb.kernels()]
    assert len(names) == len(set(names))
    assert len(names) >= 80
    for row in cryptodb.kernels():
        assert row["doc"].strip(), row["name"]
        assert cryptodb.describe_kernel(row["name"]).startswith(row["name"])


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in COMMANDS:
        assert f"`{name}" in readme, f"command {name} is not documented in README.md"
