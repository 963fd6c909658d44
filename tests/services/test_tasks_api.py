"""Tasks through the API in process: store, version, list, read; jobs that name a task, inline one, or mix it with
a schema; a task's template that a pair cannot fill refuses that pair at the door. The teacher is the tiny one."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from infra import local_env, settings_from_env

from pipelines.db.session import migrate, session_scope
from pipelines.keys import create_key
from relevance.tasks import builtin_tasks, check_task, parse_task
from services.api import create_app

MINE = {
    "name": "mine",
    "language": "en",
    "labels": [
        {"name": "Exact", "guideline": "the product asked for"},
        {"name": "Substitute", "guideline": "same kind, a detail differs"},
        {"name": "Complement", "guideline": "used with it"},
        {"name": "Irrelevant", "guideline": "anything else"},
    ],
    "guidelines": "Brand and size are hard constraints.",
    "template": "compact",
}


class Api:
    def __init__(self, client: TestClient, keys: dict[str, str]) -> None:
        self.client, self.keys = client, keys

    def call(self, method: str, path: str, who: str = "a", **kw):  # type: ignore[no-untyped-def]
        return self.client.request(method, path, headers={"Authorization": f"Bearer {self.keys[who]}"}, **kw)

    def wait(self, job_id: str) -> dict:
        for _ in range(600):
            job = self.call("GET", f"/v1/jobs/{job_id}").json()
            if job["status"] in ("completed", "failed", "cancelled"):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not finish")

    def results(self, job_id: str) -> list[dict]:
        return [json.loads(line) for line in self.call("GET", f"/v1/jobs/{job_id}/results").text.splitlines()]


@pytest.fixture(scope="module")
def api(teacher_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    env = local_env(tmp_path_factory.mktemp("tasks"), teacher_dir, AGPO_AUTH="true", AGPO_CHUNK_SIZE="8")
    settings = settings_from_env(env)
    migrate(settings.database_url)
    with session_scope(settings.database_url) as s:
        keys = {
            "a": create_key(s, "a", "pipeline")[0],
            "b": create_key(s, "b", "other")[0],
            "rev": create_key(s, "a", "ann", role="reviewer")[0],
        }
    with TestClient(create_app(settings)) as client:
        yield Api(client, keys)
    client.app.state.dispatcher.worker.join(timeout=120)


def test_storing_a_task_versions_it_only_when_it_changed(api: Api) -> None:
    first = api.call("POST", "/v1/tasks", json=MINE)
    assert first.status_code == 201, first.text
    v1 = first.json()
    assert (v1["name"], v1["version"], v1["owner"]) == ("mine", 1, "tenant")
    assert v1["prompt_version"] == check_task(parse_task(MINE)).prompt_version
    again = api.call("POST", "/v1/tasks", json=MINE)
    assert again.status_code == 200 and again.json()["id"] == v1["id"]
    changed = api.call("POST", "/v1/tasks", json={**MINE, "guidelines": "Brand matters; size does not."})
    assert changed.status_code == 201 and changed.json()["version"] == 2
    assert changed.json()["prompt_version"] != v1["prompt_version"]

    listed = {t["name"]: t for t in api.call("GET", "/v1/tasks").json()["data"]}
    assert listed["mine"]["version"] == 2 and listed["mine"]["versions"] == 2
    assert listed["esci-zh"]["owner"] == "built-in" and listed["esci-zh"]["language"] == "zh"
    old = api.call("GET", "/v1/tasks/mine", params={"version": 1}).json()
    assert old["spec"]["guidelines"] == MINE["guidelines"]
    assert api.call("GET", "/v1/tasks/mine@2").json()["version"] == 2
    # Tenants do not see each other's tasks; a reviewer's key cannot store one.
    assert "mine" not in {t["name"] for t in api.call("GET", "/v1/tasks", who="b").json()["data"]}
    assert api.call("GET", "/v1/tasks/mine", who="b").status_code == 404
    assert api.call("POST", "/v1/tasks", who="rev", json=MINE).status_code == 403


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({**MINE, "name": "esci-zh"}, "name", "built-in task"),
        ({**MINE, "template": None, "prompt": {"user": "{{ ad.titel }}"}}, "prompt", "titel"),
        ({**MINE, "examples": [{"query": "q", "ad": {"title": "t"}, "label": "Meh"}]}, "examples.0.label", "Meh"),
        ({**MINE, "labels": [{"name": "A"}, {"name": "a"}]}, "labels", "names both"),
    ],
)
def test_a_task_that_cannot_work_is_a_422_naming_the_field(api: Api, body: dict, param: str, words: str) -> None:
    r = api.call("POST", "/v1/tasks", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["param"] == param and words in error["message"]


def test_a_job_under_a_task_records_it_and_labels_with_its_prompt_version(api: Api, pool_pairs: list[dict]) -> None:
    v1 = api.call("POST", "/v1/tasks", json={**MINE, "name": "versioned"}).json()
    v2 = api.call("POST", "/v1/tasks", json={**MINE, "name": "versioned", "guidelines": "Other."}).json()
    pairs = pool_pairs[:6]
    jobs = {}
    for ref, task in (("versioned@1", v1), ("versioned", v2)):
        created = api.call("POST", "/v1/jobs", json={"pairs": pairs, "task": ref})
        assert created.status_code == 201, created.text
        job = api.wait(created.json()["id"])
        assert job["task"] == {"id": task["id"], "name": "versioned", "version": task["version"]}
        assert job["prompt_version"] == task["prompt_version"] and job["label_schema"] == "versioned"
        lines = api.results(job["id"])
        assert {line["prompt_version"] for line in lines} == {task["prompt_version"]}
        assert {line["label"] for line in lines if line["label"]} <= {"Exact", "Substitute", "Complement", "Irrelevant"}
        jobs[ref] = job
    # Another prompt version is another cache key: the second job asked the teacher again.
    assert jobs["versioned"]["request_counts"]["cached"] == 0


def test_an_inline_task_is_stored_and_a_task_with_a_schema_is_a_422(api: Api, pool_pairs: list[dict]) -> None:
    inline = {**MINE, "name": "inline-one"}
    created = api.call("POST", "/v1/jobs", json={"pairs": pool_pairs[:2], "task": inline})
    assert created.status_code == 201, created.text
    assert created.json()["task"]["name"] == "inline-one"
    assert api.call("GET", "/v1/tasks/inline-one").json()["version"] == 1
    api.wait(created.json()["id"])

    both = api.call("POST", "/v1/jobs", json={"pairs": pool_pairs[:2], "task": "mine", "label_schema": "esci"})
    assert both.status_code == 422 and both.json()["error"]["param"] == "task"
    missing = api.call("POST", "/v1/jobs", json={"pairs": pool_pairs[:2], "task": "nope@3"})
    assert missing.status_code == 422 and "no task 'nope' version 3" in missing.json()["error"]["message"]
    bad_inline = api.call("POST", "/v1/jobs", json={"pairs": pool_pairs[:2], "task": {**inline, "labels": []}})
    assert bad_inline.status_code == 422 and bad_inline.json()["error"]["param"] == "task.labels"
    sync = api.call("POST", "/v1/annotate", json={"pairs": pool_pairs[:1], "task": "mine@1"})
    assert sync.status_code == 200, sync.text
    assert sync.json()["data"][0]["prompt_version"] == api.call("GET", "/v1/tasks/mine@1").json()["prompt_version"]


def test_a_pair_the_tasks_template_cannot_fill_is_refused_alone(api: Api, pool_pairs: list[dict]) -> None:
    colour = copy.deepcopy(MINE)
    colour.update(
        name="needs-colour",
        template=None,
        examples=[{"query": "red case", "ad": {"title": "Case", "attributes": {"colour": "red"}}, "label": "Exact"}],
        prompt={"user": "Query: {{ query }}\nTitle: {{ ad.title }}\nColour: {{ ad.attributes.colour }}\n{{ prefix }}"},
    )
    assert api.call("POST", "/v1/tasks", json=colour).status_code == 201
    good = {"custom_id": "ok", "query": "red case", "ad": {"title": "Case", "attributes": {"colour": "red"}}}
    bad = {"custom_id": "no-colour", "query": "case", "ad": {"title": "Case"}}
    body = "\n".join(json.dumps(p) for p in (good, bad)) + "\n"
    created = api.client.post(
        "/v1/jobs/jsonl",
        params={"task": "needs-colour"},
        content=body,
        headers={"Authorization": f"Bearer {api.keys['a']}", "Content-Type": "application/x-ndjson"},
    )
    assert created.status_code == 201, created.text
    job = api.wait(created.json()["id"])
    assert job["request_counts"]["total"] == 1 and job["request_counts"]["rejected_lines"] == 1
    errors = [json.loads(x) for x in api.call("GET", f"/v1/jobs/{job['id']}/errors").text.splitlines()]
    rejected = [e for e in errors if e["kind"] == "invalid_input"]
    assert [e["line"] for e in rejected] == [2] and "does not render" in rejected[0]["message"]
    strict = api.call("POST", "/v1/jobs", json={"pairs": [good, bad], "task": "needs-colour"})
    assert strict.status_code == 422 and strict.json()["error"]["param"] == "pairs[1]"


def test_the_builtin_chinese_task_is_there_for_every_tenant(api: Api) -> None:
    for who in ("a", "b"):
        task = api.call("GET", "/v1/tasks/esci-zh", who=who).json()
        assert task["owner"] == "built-in" and task["id"] is None
        assert task["prompt_version"] == check_task(builtin_tasks()["esci-zh"], 1).prompt_version
