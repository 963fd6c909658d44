"""Labelling tasks against a running API: ``agpo tasks create FILE.yaml | list | show NAME``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from cli.common import call_api, console, fail
from cli.jobs import DEFAULT_URL, Key, Url
from relevance.tasks import Task, TaskError, builtin_tasks, check_task, parse_task

tasks_app = typer.Typer(
    help="Labelling tasks: labels, guidelines, examples and prompt, stored and versioned by the API.",
    no_args_is_help=True,
)


def read_task_file(path: Path) -> dict[str, Any]:
    """A task file (YAML or JSON), checked here first so a mistake is named before anything is sent."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise fail(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise fail(f"{path}: a task is a mapping (name, labels, template or prompt, ...), not {type(data).__name__}")
    try:
        check_task(parse_task(data))
    except TaskError as exc:
        raise fail(f"{path}: {exc}") from None
    return data


def task_option(value: str) -> Task:
    """A ``--task`` for commands that label in process: a task file, or the name of a shipped task."""
    path = Path(value)
    if path.suffix in (".yaml", ".yml", ".json") or path.is_file():
        return check_task(parse_task(read_task_file(path)))
    shipped = builtin_tasks()
    if value not in shipped:
        raise fail(f"--task {value!r}: not a task file, nor a shipped task ({', '.join(sorted(shipped))})")
    return check_task(shipped[value], 1)


@tasks_app.command("create")
def create(
    file: Annotated[Path, typer.Argument(help="task file, YAML or JSON (see relevance/task_library/)")],
    url: Url = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Store a task: a new version when it changed since the last one, else the last one again."""
    data = read_task_file(file)
    r = call_api("POST", url, "/v1/tasks", key, json=data)
    task = r.json()
    verb = "stored" if r.status_code == 201 else "unchanged:"
    console.print(f"{verb} {task['name']}@{task['version']} (prompt {task['prompt_version']}, id {task['id']})")


@tasks_app.command("list")
def list_(url: Url = DEFAULT_URL, key: Key = None) -> None:
    """The tasks this key can use: the built-in ones and the tenant's, each at its latest version."""
    rows = call_api("GET", url, "/v1/tasks", key).json()["data"]
    table = Table("name", "version", "versions", "owner", "language", "labels", "prompt")
    for t in rows:
        table.add_row(
            t["name"],
            str(t["version"]),
            str(t.get("versions") or 1),
            t["owner"],
            t["language"],
            ", ".join(t["labels"]),
            t["prompt_version"],
        )
    console.print(table)


@tasks_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="name or name@version")],
    url: Url = DEFAULT_URL,
    key: Key = None,
    as_json: Annotated[bool, typer.Option("--json", help="the stored spec as JSON instead of YAML")] = False,
) -> None:
    """A task as it is stored (its latest version unless name@version)."""
    task = call_api("GET", url, f"/v1/tasks/{name}", key).json()
    if as_json:
        console.print_json(json.dumps(task["spec"], ensure_ascii=False))
        return
    console.print(f"# {task['name']}@{task['version']} ({task['owner']}), prompt version {task['prompt_version']}")
    typer.echo(yaml.safe_dump(task["spec"], allow_unicode=True, sort_keys=False))
