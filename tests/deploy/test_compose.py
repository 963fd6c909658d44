"""docker-compose.yml, its Dockerfile and .env.example, checked without a Docker engine.

The end-to-end tests start the same ``agpo`` commands as plain processes; here we check that the file wires
them the way a deployment needs and that every command and setting in it exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_profiles_and_health():
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "api", "worker", "beat", "teacher", "teacher-gpu"} <= set(services)
    for name in ("postgres", "redis", "api", "worker", "teacher", "teacher-gpu"):
        assert "healthcheck" in services[name], name
    assert services["teacher"]["profiles"] == ["cpu"] and services["teacher-gpu"]["profiles"] == ["gpu"]
    gpu = services["teacher-gpu"]
    assert gpu["image"].startswith("vllm/vllm-openai")
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    # Workers reach either teacher under the same name, so switching profiles changes no setting.
    assert "teacher" in gpu["networks"]["default"]["aliases"]
    assert "--served-model-name" in gpu["command"]
    for name in ("api", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_the_lora_gpu_teacher_serves_the_adapter_under_the_teachers_name():
    lora = compose()["services"]["teacher-gpu-lora"]
    assert lora["profiles"] == ["gpu-lora"] and "healthcheck" in lora
    command = lora["command"]
    assert "--enable-lora" in command
    name, path = command[command.index("--lora-modules") + 1].split("=")
    assert name == "relevance-teacher" and any(v.rsplit(":", 2)[1] == path for v in lora["volumes"])
    assert int(command[command.index("--max-lora-rank") + 1]) >= 16  # the recipe's rank (configs/teacher_smollm2.yaml)
    assert "teacher" in lora["networks"]["default"]["aliases"]
    assert lora["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_every_agpo_command_in_the_file_exists_with_its_options():
    from cli.main import app

    runner = CliRunner()
    commands = [s["command"] for s in compose()["services"].values() if s.get("command", [None])[0] == "agpo"]
    assert len(commands) >= 5
    for command in commands:
        result = runner.invoke(app, [*command[1:], "--help"])
        assert result.exit_code == 0, (command, result.output)


def test_env_example_names_only_real_settings():
    from pipelines.settings import Settings

    keys = re.findall(r"^(AGPO_[A-Z_]+)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE)
    fields = {f"AGPO_{name.upper()}" for name in Settings.model_fields}
    assert keys and set(keys) <= fields, set(keys) - fields


def test_dockerfile_pins_cpu_torch_before_the_project_and_copies_what_exists():
    text = (ROOT / "deploy/docker/Dockerfile").read_text()
    torch_at = text.index("torch==2.13.0")
    (install,) = re.findall(r"^RUN pip install '\.\[[a-z,-]+\]'.*$", text, flags=re.MULTILINE)
    assert torch_at < text.index(install)
    assert "-c constraints.txt" in install and install.endswith("torch==2.13.0"), install
    copied = re.findall(r"^COPY (\S+)", text, flags=re.MULTILINE)
    for src in copied:
        assert (ROOT / src).exists(), src
    # Every package the wheel is built from is in the image, or `pip install .` leaves `agpo` half there.
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(copied), f"not copied into the image: {sorted(packages - set(copied))}"


def test_readme_configuration_table_names_every_setting():
    from pipelines.settings import Settings

    readme = (ROOT / "README.md").read_text()
    missing = [f"AGPO_{name.upper()}" for name in Settings.model_fields if f"`AGPO_{name.upper()}`" not in readme]
    assert not missing, missing
