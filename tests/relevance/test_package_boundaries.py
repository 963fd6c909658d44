"""The domain package depends on no other part of the project except agpo's reward interface, and never on torch."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "relevance"
THIRD_PARTY = {"numpy", "pydantic", "pydantic_core", "sklearn", "pandas", "pyarrow"}
PROJECT = {"agpo", "pipelines", "services", "student"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_static_imports_stay_inside_the_allowed_set() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) >= 10
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            if top in PROJECT:
                assert name == "agpo.rewards", f"{path.name} imports {name}"
            else:
                allowed = top in sys.stdlib_module_names or top in THIRD_PARTY or top == "relevance"
                assert allowed, f"{path.name} imports {name}"


def test_importing_everything_loads_no_torch() -> None:
    code = (
        "import sys, relevance, relevance.metrics, relevance.importers, relevance.synthetic; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'pipelines', 'services', 'student'}); "
        "print(','.join(bad))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
