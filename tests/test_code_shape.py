"""The code stays readable: no function of the app is longer than a screen.

Ruff has no rule for a function's length (its complexity and statement limits are in
pyproject.toml), so this test counts lines: a function's body, its docstring left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 60


def function_lengths(path: Path) -> list[tuple[str, int]]:
    """``(name, lines)`` of every function in ``path``, docstrings not counted."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                lines -= first.end_lineno - first.lineno + 1  # type: ignore[operator]
            where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
            found.append((f"{where}:{node.lineno} {node.name}", lines))
    return found


def test_function_lengths_are_measured_without_docstrings(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('def f():\n    """Doc\n\n    more.\n    """\n    a = 1\n    return a\n')
    assert [lines for _, lines in function_lengths(module)] == [3]


def test_no_function_is_longer_than_a_screen() -> None:
    sources = [*REPO.glob("explorer/**/*.py"), *REPO.glob("pages/*.py"), REPO / "streamlit_app.py"]
    too_long = [
        f"{where} ({lines} lines)"
        for path in sources
        for where, lines in function_lengths(path)
        if lines > MAX_LINES
    ]
    assert not too_long, f"functions over {MAX_LINES} lines: {too_long}"
