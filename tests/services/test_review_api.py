"""The review loop in process: a labelled job, reviewer keys, the queue, reviews, agreement, gold and the
Argilla / Label Studio round trips (checked with Argilla's own SDK and Label Studio's documented task format)."""

from __future__ import annotations

import io
import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from infra import local_env, settings_from_env
from sklearn.metrics import cohen_kappa_score

from pipelines.db.models import JobItem
from pipelines.db.session import migrate, session_scope
from pipelines.keys import create_key
from pipelines.settings import Settings
from relevance.pairs import Pair
from relevance.votes import uncertainty
from services.api import create_app

LABELS = ["Exact", "Substitute", "Complement", "Irrelevant"]


class Review:
    def __init__(self, client: TestClient, keys: dict[str, str], settings: Settings, job_id: str) -> None:
        self.client, self.keys, self.settings, self.job_id = client, keys, settings, job_id

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def get(self, path: str, who: str = "ann", **kw):  # type: ignore[no-untyped-def]
        return self.client.get(path.format(job=self.job_id), headers=self.h(who), **kw)

    def post(self, path: str, who: str = "ann", **kw):  # type: ignore[no-untyped-def]
        return self.client.post(path.format(job=self.job_id), headers=self.h(who), **kw)


@pytest.fixture(scope="module")
def rv(teacher_dir: Path, pool_pairs: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Review]:
    env = local_env(
        tmp_path_factory.mktemp("review"), teacher_dir, AGPO_AUTH="true", AGPO_SAMPLES="2", AGPO_CHUNK_SIZE="8"
    )
    settings = settings_from_env(env)
    migrate(settings.database_url)
    with session_scope(settings.database_url) as s:
        keys = {
            "client": create_key(s, "a", "pipeline")[0],
            "ann": create_key(s, "a", "ann", role="reviewer")[0],
            "bob": create_key(s, "a", "bob", role="reviewer")[0],
            "eve": create_key(s, "b", "eve", role="reviewer")[0],
        }
    with TestClient(create_app(settings)) as client:
        created = client.post(
            "/v1/jobs", json={"pairs": pool_pairs[:24]}, headers={"Authorization": f"Bearer {keys['client']}"}
        )
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        for _ in range(600):
            if client.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {keys['ann']}"}).json()[
                "status"
            ] in ("completed", "failed"):
                break
            time.sleep(0.2)
        yield Review(client, keys, settings, job_id)
    client.app.state.dispatcher.worker.join(timeout=120)


def test_a_reviewer_key_reviews_but_cannot_run_jobs(rv: Review, pool_pairs: list[dict]) -> None:
    assert rv.get("/v1/me").json() == {"tenant": "a", "reviewer": "ann", "role": "reviewer"}
    refused = rv.post("/v1/jobs", json={"pairs": pool_pairs[:1]})
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
    assert "reviewer" in refused.json()["error"]["message"]
    assert rv.post("/v1/annotate", json={"pairs": pool_pairs[:1]}).status_code == 403
    assert rv.get("/v1/jobs/{job}/results").status_code == 403
    assert rv.get("/v1/jobs/{job}").json()["status"] == "completed"
    assert rv.get("/v1/jobs/{job}/queue").status_code == 200
    # another tenant's reviewer sees no such job
    assert rv.get("/v1/jobs/{job}/queue", "eve").status_code == 404
    page = rv.client.get("/review")
    assert page.status_code == 200 and "keydown" in page.text


def test_every_result_carries_its_uncertainty_and_the_queue_puts_the_least_sure_first(rv: Review) -> None:
    with session_scope(rv.settings.database_url) as s:
        items = s.query(JobItem).filter(JobItem.job_id == rv.job_id).all()
        for item in items:
            assert item.label == item.result["label"]
            assert item.uncertainty == pytest.approx(uncertainty(item.label, item.result.get("distribution") or {}))
        # The tiny teacher's votes are mostly unanimous: spread the scores as split votes would, to see the order.
        for n, item in enumerate(items):
            item.uncertainty = (n * 7 % 24) / 24
    page = rv.get("/v1/jobs/{job}/queue", params={"limit": 50}).json()
    assert page["total"] == 24 and page["labels"] == LABELS and page["reviewed"] == 0
    scores = [i["uncertainty"] for i in page["items"]]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 24
    by_confidence = rv.get("/v1/jobs/{job}/queue", params={"order": "confidence", "limit": 50}).json()["items"]
    confidences = [i["confidence"] for i in by_confidence if i["confidence"] is not None]
    assert confidences == sorted(confidences)
    top = page["items"][0]
    assert set(top["ad"]) >= {"title"} and top["query"] and isinstance(top["distribution"], dict)

    label = next(i["label"] for i in page["items"] if i["label"])  # failed pairs (no label) come first
    only = rv.get("/v1/jobs/{job}/queue", params={"label": label, "limit": 50}).json()
    assert only["total"] == sum(i["label"] == label for i in page["items"]) and all(
        i["label"] == label for i in only["items"]
    )
    band = rv.get("/v1/jobs/{job}/queue", params={"min_confidence": 0.5, "max_confidence": 0.7, "limit": 50}).json()
    assert all(0.5 <= i["confidence"] <= 0.7 for i in band["items"])
    word = page["items"][-1]["query"].split()[0]
    found = rv.get("/v1/jobs/{job}/queue", params={"query": word, "limit": 50}).json()["items"]
    assert found and all(word.lower() in i["query"].lower() for i in found)
    assert rv.get("/v1/jobs/{job}/queue", params={"query": "100%_x"}).json()["total"] == 0
    bad = rv.get("/v1/jobs/{job}/queue", params={"query": "a\x00b"})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "query"


def test_reviews_are_stored_per_reviewer_and_never_change_the_teachers_result(rv: Review) -> None:
    items = rv.get("/v1/jobs/{job}/queue", params={"order": "line", "limit": 50}).json()["items"]
    first = items[0]
    wrong = rv.post("/v1/jobs/{job}/reviews", json={"custom_id": first["custom_id"], "label": "Great"})
    assert wrong.status_code == 422 and wrong.json()["error"]["param"] == "label"
    missing = rv.post("/v1/jobs/{job}/reviews", json={"custom_id": "nope", "label": "Exact"})
    assert missing.status_code == 422 and missing.json()["error"]["param"] == "custom_id"

    # ann: agrees on the first 6, says Irrelevant on the next 4; bob: agrees on 0-1, Substitute on 2-5
    for i, item in enumerate(items[:10]):
        label = item["label"] if i < 6 else "Irrelevant"
        r = rv.post("/v1/jobs/{job}/reviews", json={"custom_id": item["custom_id"], "label": label, "note": f"n{i}"})
        assert r.status_code == 201 and r.json()["teacher_label"] == item["label"], r.text
    for i, item in enumerate(items[:6]):
        label = item["label"] if i < 2 else "Substitute"
        assert rv.post(
            "/v1/jobs/{job}/reviews", "bob", json={"custom_id": item["custom_id"], "label": label}
        ).is_success
    again = rv.post("/v1/jobs/{job}/reviews", json={"custom_id": first["custom_id"], "label": first["label"]})
    assert again.status_code == 200 and again.json()["created"] is False

    reviews = rv.get("/v1/jobs/{job}/reviews").json()["data"]
    assert len(reviews) == 16 and {r["reviewer"] for r in reviews} == {"ann", "bob"}
    results = rv.client.get(
        f"/v1/jobs/{rv.job_id}/results", headers={"Authorization": f"Bearer {rv.keys['client']}"}
    ).text.splitlines()
    assert [json.loads(x)["label"] for x in results][:10] == [i["label"] for i in items[:10]]

    pending = rv.get("/v1/jobs/{job}/queue", params={"pending": "true", "limit": 50}).json()
    assert pending["total"] == 14 and pending["reviewed"] == 10 and pending["reviewed_by_me"] == 10
    assert rv.get("/v1/jobs/{job}/queue", "bob", params={"pending": "true"}).json()["total"] == 18

    a = rv.get("/v1/jobs/{job}/agreement").json()
    teacher = [i["label"] for i in items[:10]] + [i["label"] for i in items[:6]]
    human = [i["label"] if n < 6 else "Irrelevant" for n, i in enumerate(items[:10])]
    human += [i["label"] if n < 2 else "Substitute" for n, i in enumerate(items[:6])]
    assert a["teacher_vs_human"]["n"] == 16
    expected = cohen_kappa_score(human, teacher, labels=LABELS)
    assert a["teacher_vs_human"]["kappa"] == pytest.approx(expected, abs=1e-4)
    assert a["human_vs_human"]["n"] == 6 and a["human_vs_human"]["agreement"] == pytest.approx(2 / 6, abs=1e-4)
    assert sum(map(sum, a["confusion"]["matrix"])) == 10

    gold = [json.loads(x) for x in rv.get("/v1/jobs/{job}/gold").text.splitlines()]
    assert len(gold) == 10
    for row in gold:
        Pair.model_validate(row)  # what `agpo student train --source gold` reads
    by_id = {row["custom_id"]: row for row in gold}
    # items 2-5: ann agrees with the teacher, bob does not; the tie goes to bob, the later reviewer
    assert by_id[items[3]["custom_id"]]["meta"]["label"] == "Substitute"
    assert by_id[items[7]["custom_id"]]["meta"]["label"] == "Irrelevant"
    assert by_id[items[7]["custom_id"]]["meta"]["teacher_label"] == items[7]["label"]
    table = pq.read_table(io.BytesIO(rv.get("/v1/jobs/{job}/gold", params={"format": "parquet"}).content))
    assert table.num_rows == 10 and table.column("label").to_pylist() == [r["meta"]["label"] for r in gold]


def test_argilla_records_load_with_the_sdk_and_their_responses_come_back_as_reviews(rv: Review) -> None:
    rg = pytest.importorskip("argilla")
    export = rv.get("/v1/jobs/{job}/review-export", params={"format": "argilla", "limit": 5}).json()
    assert [q["labels"] for q in export["settings"]["questions"]] == [LABELS]
    records = [rg.Record.from_dict(r) for r in export["records"]]
    assert len(records) == 5
    first = export["records"][0]
    assert records[0].suggestions["label"].value == first["suggestions"]["label"]["value"] in LABELS
    assert records[0].suggestions["label"].agent.startswith(rv.get("/v1/jobs/{job}").json()["teacher"][:10])
    assert 0 <= records[0].suggestions["label"].score <= 1 and records[0].fields["query"]

    # An annotator answers in Argilla; the records come back as `Record.to_dict()` writes them.
    user = uuid.uuid4()
    back = []
    for record in records[:3]:
        record.responses.add(rg.Response("label", "Complement", user_id=user, status="submitted"))
        back.append(record.to_dict())
    draft = records[3]
    draft.responses.add(rg.Response("label", "Exact", user_id=user, status="draft"))
    # to_dict() drops a response's status; Argilla's API sends it, and a draft is not a review
    back.append(draft.to_dict())
    back[-1]["responses"]["label"][0]["status"] = "draft"
    done = rv.post("/v1/jobs/{job}/review-import", params={"format": "argilla"}, json=back)
    assert done.status_code == 200 and done.json()["created"] == 3, done.text
    stored = [r for r in rv.get("/v1/jobs/{job}/reviews").json()["data"] if r["reviewer"] == f"argilla:{user}"]
    assert sorted(r["custom_id"] for r in stored) == sorted(r["id"] for r in back[:3])
    assert {r["label"] for r in stored} == {"Complement"}
    bad = rv.post("/v1/jobs/{job}/review-import", params={"format": "argilla"}, json=[{"id": 5}])
    assert bad.status_code == 422 and "record 0: id" in bad.json()["error"]["message"]


def test_label_studio_tasks_follow_the_documented_format_and_annotations_come_back(rv: Review) -> None:
    export = rv.get("/v1/jobs/{job}/review-export", params={"format": "label-studio", "limit": 4}).json()
    config = ET.fromstring(export["label_config"])
    choices = config.find("Choices")
    assert choices is not None and [c.get("value") for c in choices.findall("Choice")] == LABELS
    objects = {el.get("name"): el.get("value") for el in config if el.tag == "Text"}
    # https://labelstud.io/guide/predictions: result items name the control (from_name) and object (to_name)
    for task in export["tasks"]:
        for variable in objects.values():
            assert variable.startswith("$") and variable[1:] in task["data"]
        (prediction,) = task["predictions"]
        assert isinstance(prediction["model_version"], str) and 0 <= prediction["score"] <= 1
        (result,) = prediction["result"]
        assert result["from_name"] == choices.get("name") and result["to_name"] == choices.get("toName")
        assert result["to_name"] in objects and result["type"] == "choices"
        assert result["value"]["choices"][0] in LABELS
    # A Label Studio JSON export: the task with its annotations (one cancelled).
    exported = []
    for n, task in enumerate(export["tasks"][:2]):
        result = [{"from_name": "label", "to_name": "pair", "type": "choices", "value": {"choices": ["Exact"]}}]
        annotations = [{"id": n + 1, "completed_by": 7, "result": result, "was_cancelled": False}]
        annotations.append({"id": n + 10, "completed_by": 8, "result": result, "was_cancelled": True})
        exported.append({"id": 100 + n, "data": task["data"], "annotations": annotations, "predictions": []})
    done = rv.post("/v1/jobs/{job}/review-import", params={"format": "label-studio"}, json=exported)
    assert done.status_code == 200 and done.json()["created"] == 2, done.text
    reviewers = {r["reviewer"] for r in rv.get("/v1/jobs/{job}/reviews").json()["data"]}
    assert "label-studio:7" in reviewers and "label-studio:8" not in reviewers
    unknown = [{"data": {"custom_id": "nope"}, "annotations": exported[0]["annotations"]}]
    refused = rv.post("/v1/jobs/{job}/review-import", params={"format": "label-studio"}, json=unknown)
    assert refused.status_code == 422 and refused.json()["error"]["param"] == "custom_id"
