"""README's "What survives what" table is the fault suite's FAULT_TABLE, and every test the
table names exists and is a fault-injection test (marked ``faults``): the table cannot rot."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("fault_table", ROOT / "tools" / "fault_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _marked_faults(node) -> bool:
    return any("faults" in ast.unparse(d) for d in getattr(node, "decorator_list", []))


def test_readme_holds_the_generated_fault_table():
    tool = _tool()
    assert tool.readme_table() == tool.render(tool.fault_table()), (
        "run `python tools/fault_table.py --write`"
    )


def test_every_test_the_table_names_exists_and_is_marked_faults():
    tool = _tool()
    table = tool.fault_table()
    assert len(table) >= 6
    for family, (_faults, _holds, tests) in table.items():
        assert tests, family
        for test in tests:
            file, _, name = test.partition("::")
            tree = ast.parse((ROOT / file).read_text(encoding="utf-8"))
            module_marked = any(
                isinstance(n, ast.Assign)
                and any(getattr(t, "id", "") == "pytestmark" for t in n.targets)
                and "faults" in ast.unparse(n.value)
                for n in tree.body
            )
            funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
            if not name:  # a whole file: it holds fault-injection tests
                assert module_marked or any(map(_marked_faults, funcs.values())), (
                    f"{family}: {file}"
                )
                continue
            assert name in funcs, f"{family}: {test} does not exist"
            assert module_marked or _marked_faults(funcs[name]), (
                f"{family}: {test} is not marked faults"
            )


def test_the_table_renders_one_row_per_family():
    tool = _tool()
    rendered = tool.render(
        {"f": ("a", "b", ["tests/e2e/x.py::t", "tests/e2e/x.py::u", "tests/unit/y.py"])}
    )
    assert rendered.splitlines()[2] == "| f | a | b | `e2e/x.py`, `unit/y.py` |"
