"""The packages depend on each other in one direction only, as README's layout and docs/architecture.md draw them.

relevance (the domain), agpo (the algorithm) and llm (pretrained bases, model loading, what the CPU computes
fast) import no other part of the project; rlvr runs RL on agpo;
teacher training builds on rlvr; the annotation engine (pipelines) never imports teacher training or RL (it loads
the student's scorer for cascade jobs); human review (review) reads the engine's tables; the
HTTP services sit on the engine, review and the student's scorer; experiments may use anything, and only the CLI
imports them; nothing imports the CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from project_imports import PROJECT, ROOT, module_imports, package_files, top_modules_loaded_by

ALLOWED = {
    "relevance": set(),
    "agpo": set(),
    "llm": set(),
    "rlvr": {"agpo", "llm"},
    "teacher": {"agpo", "llm", "rlvr", "relevance"},
    "pipelines": {"relevance", "llm", "student"},
    "student": {"relevance", "llm"},
    "review": {"pipelines", "relevance"},
    "services": {"pipelines", "student", "relevance", "review"},
    "experiments": {"agpo", "llm", "rlvr", "relevance", "teacher", "pipelines", "student", "services", "review"},
    "cli": {"agpo", "llm", "rlvr", "relevance", "teacher", "pipelines", "student", "services", "experiments", "review"},
}
RELEVANCE_THIRD_PARTY = {"numpy", "pydantic", "pydantic_core", "sklearn", "pandas", "pyarrow", "jinja2", "yaml"}


def _project_imports(package: str) -> dict[str, set[str]]:
    """For each file of ``package``, the other project packages it imports."""
    found: dict[str, set[str]] = {}
    for path in package_files(package):
        tops = {name.split(".")[0] for name in module_imports(path)}
        found[str(path.relative_to(ROOT))] = {top for top in tops if top in PROJECT and top != package}
    return found


def test_every_package_is_in_the_rules() -> None:
    on_disk = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert on_disk == set(PROJECT), "a new top-level package needs its place in ALLOWED (and in README's layout)"


@pytest.mark.parametrize("package", PROJECT)
def test_imports_point_one_way(package: str) -> None:
    files = _project_imports(package)
    assert files, f"{package} has no Python files"
    for path, imported in files.items():
        assert imported <= ALLOWED[package], f"{path} imports {sorted(imported - ALLOWED[package])}"


def test_the_rules_have_no_cycle() -> None:
    seen: dict[str, int] = {}

    def visit(package: str, stack: tuple[str, ...]) -> None:
        assert package not in stack, f"cycle: {' -> '.join((*stack, package))}"
        for dep in ALLOWED[package]:
            visit(dep, (*stack, package))
        seen[package] = 1

    for package in PROJECT:
        visit(package, ())


def test_a_violation_is_caught(tmp_path: Path) -> None:
    """The check above reads lazy imports too: an engine module importing teacher training inside a function."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from teacher.build import build_teacher\n    return build_teacher\n")
    assert {name.split(".")[0] for name in module_imports(bad)} & set(PROJECT) == {"teacher"}


def test_relevance_imports_only_light_third_party_packages() -> None:
    files = package_files("relevance")
    assert len(files) >= 10
    for path in files:
        for name in module_imports(path):
            top = name.split(".")[0]
            allowed = top in sys.stdlib_module_names or top in RELEVANCE_THIRD_PARTY or top == "relevance"
            assert allowed, f"{path.name} imports {name}"


def test_importing_the_domain_loads_no_torch() -> None:
    loaded = top_modules_loaded_by("import relevance, relevance.metrics, relevance.importers, relevance.synthetic")
    assert not loaded & {"torch", "pipelines", "services", "student", "teacher", "rlvr", "experiments"}, loaded


def test_the_api_and_the_engine_load_no_training_code() -> None:
    """An API or a worker talking to a remote teacher runs without torch, trl or the training packages."""
    loaded = top_modules_loaded_by(
        "import services.api.app, pipelines.tasks, pipelines.dispatch, pipelines.backends.openai_backend"
    )
    assert not loaded & {"torch", "trl", "teacher", "rlvr", "experiments", "cli", "onnxruntime"}, loaded
