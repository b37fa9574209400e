"""The rule of imports in ARCHITECTURE.md holds: layers import only downwards, nothing cycles.

The table of layers is read from ARCHITECTURE.md itself, so the document and this check
cannot drift apart. Every import counts, the ones inside functions too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*`([\w.]+)`")


def layer_ranks(text: str) -> dict[str, int]:
    """``{package: rank}`` from the rows ``| rank | `explorer.x` | …`` of ARCHITECTURE.md."""
    return {m[2]: int(m[1]) for line in text.splitlines() if (m := ROW.match(line))}


def module_name(path: Path, root: Path) -> str:
    """``explorer/models/zoo.py`` → ``explorer.models.zoo`` (a package's ``__init__``: itself)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def import_graph(root: Path, package: str = "explorer") -> dict[str, set[str]]:
    """``{module: modules it imports}`` for every module of ``package`` under ``root``."""
    paths = {module_name(p, root): p for p in (root / package).rglob("*.py")}
    paths.pop(package, None)  # the root's __init__ only says what the package is
    known = set(paths)
    return {name: imports_of(path, known) - {name} for name, path in paths.items()}


def layer_of(module: str, ranks: dict[str, int]) -> str:
    """The longest package or module of the table that ``module`` belongs to."""
    owners = [name for name in ranks if module == name or module.startswith(name + ".")]
    if not owners:
        raise KeyError(f"{module} is in no layer of ARCHITECTURE.md")
    return max(owners, key=len)


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph``, or ``None``."""
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as error:
        return list(error.args[1])
    return None


def upward_imports(graph: dict[str, set[str]], ranks: dict[str, int]) -> Iterable[str]:
    """Each import from a layer to one of the same rank or higher, other than within itself."""
    for module, targets in graph.items():
        here = layer_of(module, ranks)
        for target in sorted(targets):
            there = layer_of(target, ranks)
            if there != here and ranks[there] >= ranks[here]:
                yield f"{module} ({here}, {ranks[here]}) → {target} ({there}, {ranks[there]})"


RANKS = layer_ranks((REPO / "ARCHITECTURE.md").read_text(encoding="utf-8"))
GRAPH = import_graph(REPO)


def test_the_table_names_every_package() -> None:
    packages = {p.parent.name for p in (REPO / "explorer").glob("*/__init__.py")}
    assert {f"explorer.{name}" for name in packages} <= set(RANKS)
    for module in GRAPH:
        layer_of(module, RANKS)  # raises for a module in no layer


def test_each_package_names_its_modules_and_imports_nothing() -> None:
    for init in (REPO / "explorer").glob("*/__init__.py"):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{init} does not say what it offers"
        assigned = {
            t.id: n.value
            for n in tree.body
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        modules = sorted(p.stem for p in init.parent.glob("*.py") if p.stem != "__init__")
        assert ast.literal_eval(assigned["__all__"]) == modules, init
        assert not [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)], init


def test_no_module_imports_in_a_cycle() -> None:
    assert cycle_in(GRAPH) is None


def test_no_package_imports_in_a_cycle() -> None:
    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        here = layer_of(module, RANKS)
        packages.setdefault(here, set()).update(layer_of(t, RANKS) for t in targets)
        packages[here].discard(here)
    assert cycle_in(packages) is None


def test_layers_import_only_downwards() -> None:
    assert list(upward_imports(GRAPH, RANKS)) == []


def test_the_library_never_imports_the_pages_or_streamlit() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "explorer").rglob("*.py")
        if re.search(r"^\s*(import|from)\s+(streamlit|pages)\b", path.read_text(), re.M)
    ]
    assert offenders == []


PROJECT = ("explorer", "pages", "tests")


def private_uses(path: Path) -> list[str]:
    """``from m import _x`` and ``m._x`` in ``path``, for the project's own modules ``m``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found, aliases = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PROJECT):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.name}:{node.lineno} {node.module}.{alias.name}")
                aliases.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            aliases |= {
                a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith(PROJECT)
            }
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            owner = node.value
            while isinstance(owner, ast.Attribute):
                owner = owner.value
            if (
                not node.attr.startswith("__")
                and isinstance(owner, ast.Name)
                and owner.id in aliases
            ):
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_private_name_is_used_outside_its_module() -> None:
    sources = [*REPO.glob("explorer/**/*.py"), *REPO.glob("pages/*.py"), *REPO.glob("tests/*.py")]
    assert [use for path in sources for use in private_uses(path)] == []


def test_the_private_name_check_sees_both_forms(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from explorer.models.zoo import _build, load_model\n"
        "from explorer.sandbox import boundary\n"
        "import explorer.models.own\n"
        "boundary._spare, explorer.models.own._x, load_model.__doc__, boundary.run_task\n"
    )
    assert private_uses(module) == [
        "m.py:1 explorer.models.zoo._build",
        "m.py:4 boundary._spare",
        "m.py:4 explorer.models.own._x",
    ]


def test_the_checks_see_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    package = tmp_path / "explorer"
    for name, body in {
        "low/__init__.py": "",
        "low/a.py": "from explorer.low.b import x\n",
        "low/b.py": "def f():\n    import explorer.low.a\n",
        "high/__init__.py": "",
        "high/c.py": "import explorer.low.a\n",
    }.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(body)
    graph = import_graph(tmp_path)
    assert set(cycle_in(graph) or ()) == {"explorer.low.a", "explorer.low.b"}
    ranks = {"explorer.low": 2, "explorer.high": 1}
    assert list(upward_imports(graph, ranks)) == [
        "explorer.high.c (explorer.high, 1) → explorer.low.a (explorer.low, 2)"
    ]
    with pytest.raises(KeyError, match="no layer"):
        layer_of("elsewhere.x", ranks)
