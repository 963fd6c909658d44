"""What the project's files import, read from their source, and what a fresh interpreter loads for an import.

Shared by the package-boundary and the packaging tests, which hold those imports to the layout and to pyproject.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = (
    "agpo",
    "llm",
    "rlvr",
    "relevance",
    "teacher",
    "pipelines",
    "student",
    "review",
    "services",
    "experiments",
    "cli",
)


def module_imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Every absolute module a file imports; lazy imports inside functions too, unless ``top_level_only``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body if top_level_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def package_files(*packages: str) -> list[Path]:
    return [path for package in packages for path in sorted((ROOT / package).rglob("*.py"))]


def top_modules_loaded_by(statement: str) -> set[str]:
    """The top-level modules in ``sys.modules`` after ``statement`` runs in a fresh interpreter on this checkout."""
    code = f"import sys; {statement}; print(','.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return set(out.stdout.strip().split(","))
