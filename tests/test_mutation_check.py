"""scripts/mutation_check.py: its entries still point at code and tests, and a survivor fails it."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def mutation_check():
    spec = importlib.util.spec_from_file_location("mutation_check", ROOT / "scripts" / "mutation_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_check"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules["mutation_check"]


def test_every_snippet_is_found_once_and_every_test_exists(mutation_check):
    assert len(mutation_check.MUTATIONS) >= 12
    assert len({m.name for m in mutation_check.MUTATIONS}) == len(mutation_check.MUTATIONS)
    for m in mutation_check.MUTATIONS:
        text = (ROOT / m.file).read_text()
        assert text.count(m.old) == 1, f"{m.name}: snippet found {text.count(m.old)}x in {m.file} (the code moved)"
        assert m.new != m.old and m.tests
        for test in m.tests:
            file, _, name = test.partition("::")
            assert re.search(rf"^def {re.escape(name)}\(", (ROOT / file).read_text(), re.M), f"{m.name}: no {test}"


def test_moved_snippet_and_surviving_mutation_are_failures(mutation_check, capsys):
    moved = mutation_check.Mutation("moved", "pipeline/storage.py", "no such line\n", "x\n", ("tests/test_storage.py",))
    assert "the code moved" in mutation_check.run_one(moved).status
    # a change no test can see (a comment) survives its test and is reported as not caught
    harmless = mutation_check.Mutation(
        "harmless", "pipeline/storage.py", "#: Packages whose versions go into every output file.\n", "#: changed\n",
        ("tests/test_storage.py::test_config_hash_ignores_key_order_but_not_values",),
    )
    survived = mutation_check.run_one(harmless)
    assert survived.status == "NO"
    mutation_check.print_table([survived])
    assert re.search(r"harmless\s+storage::test_config_hash_ignores_key_order_but_not_values\s+NO", capsys.readouterr().out)
