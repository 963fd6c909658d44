"""The review page in a real browser: Debian's chromium driven by Playwright (no browser download), against a real
API process (uvicorn, SQLite, its own worker) that labelled a job with the tiny test teacher. A reviewer signs in
with their key, reviews five pairs with the keyboard alone, and the database and the agreement dashboard show
exactly those reviews.

Set AGPO_REVIEW_SCREENSHOTS=DIR to keep the queue and dashboard screenshots (README's come from here).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from pipelines.db.session import migrate, session_scope
from pipelines.keys import create_key
from services.procs import answers, free_port, running, wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags chromium keeps dialling out, and this network refuses it.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def playwright_browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `apt-get install chromium` (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


def test_a_reviewer_reviews_five_pairs_with_the_keyboard(
    playwright_browser, teacher_dir: Path, pool_pairs: list[dict], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'api.db'}"
    migrate(db)
    with session_scope(db) as s:
        client_key = create_key(s, "shop", "pipeline")[0]
        reviewer_key = create_key(s, "shop", "ann", role="reviewer")[0]
    env = {
        "AGPO_DATABASE_URL": db,
        "AGPO_QUEUE": "local",
        "AGPO_AUTH": "true",
        "AGPO_TEACHER_MODEL": str(teacher_dir),
        "AGPO_SAMPLES": "2",
        "AGPO_MAX_TOKENS": "20",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running([["serve", "api", "--port", str(port)]], env, tmp_path, names=["api"]):
        wait_until(lambda: answers(url + "/healthz"), 120, "the API")
        api = httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {client_key}"})
        job = api.post("/v1/jobs", json={"pairs": pool_pairs[:12]}).json()
        wait_until(lambda: api.get(f"/v1/jobs/{job['id']}").json()["status"] == "completed", 180, "the job")

        page = playwright_browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(f"{url}/review?job={job['id']}")
        page.wait_for_selector("#login:not([hidden])")
        page.fill("#key", reviewer_key)
        page.press("#key", "Enter")
        page.wait_for_selector("#item .query")
        assert "ann" in page.inner_text("#who") and "reviewer" in page.inner_text("#who")

        queue = api.get(f"/v1/jobs/{job['id']}/queue", params={"limit": 12}).json()["items"]
        labels = ["Exact", "Substitute", "Complement", "Irrelevant"]
        # 1-4 pick a label, Enter accepts the teacher's, the arrows move: five reviews, one pair skipped
        keys = ["2", "Enter", "ArrowRight", "4", "1", "Enter"]
        expected: dict[str, str] = {}
        at = 0
        for key in keys:
            shown = page.get_attribute("#item", "data-custom-id")
            assert shown == queue[at]["custom_id"], (key, shown, queue[at]["custom_id"])
            page.keyboard.press(key)
            if key == "ArrowRight":
                at += 1
                page.wait_for_function(f"document.querySelector('#item').dataset.customId !== {shown!r}")
                continue
            expected[shown] = queue[at]["label"] if key == "Enter" else labels[int(key) - 1]
            page.wait_for_function(f"document.querySelector('#status').textContent.startsWith('saved {shown}')")
            at += 1
        page.wait_for_function("document.querySelector('#progress').textContent.includes('5 by you')")
        shots = Path(os.environ.get("AGPO_REVIEW_SCREENSHOTS") or tmp_path)
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "review_queue.png"), full_page=True)

        reviews = api.get(f"/v1/jobs/{job['id']}/reviews").json()["data"]
        assert {r["custom_id"]: r["label"] for r in reviews} == expected
        assert {r["reviewer"] for r in reviews} == {"ann"} and len(reviews) == 5

        page.click("#tab-dashboard")
        page.wait_for_selector("#stat-reviewed")
        agreement = api.get(f"/v1/jobs/{job['id']}/agreement").json()
        assert page.inner_text("#stat-reviewed") == "5"
        kappa = agreement["teacher_vs_human"]["kappa"]
        shown_kappa = page.inner_text("#stat-kappa-teacher")
        assert shown_kappa == "n/a" if kappa is None else float(shown_kappa) == pytest.approx(kappa, abs=1e-3)
        cells = page.locator("#confusion td").all_inner_texts()
        assert sum(int(c) for c in cells) == 5
        assert page.locator("#reliability svg rect").count() >= 1
        time.sleep(0.2)  # let the plot settle before the picture
        page.screenshot(path=str(shots / "review_dashboard.png"), full_page=True)
        page.close()

        # The same reviews, as gold, through the CLI (a reviewer's key may export)
        from typer.testing import CliRunner

        from cli.main import app
        from relevance.pairs import read_pairs_jsonl

        out = tmp_path / "gold.jsonl"
        done = CliRunner().invoke(app, ["review", "export", job["id"], "--out", str(out), "--url", url,
                                        "--key", reviewer_key])  # fmt: skip
        assert done.exit_code == 0, done.output
        gold = read_pairs_jsonl(out).pairs
        assert {p.custom_id: p.meta["label"] for p in gold} == expected
        shown = CliRunner().invoke(app, ["review", "agreement", job["id"], "--url", url, "--key", reviewer_key])
        assert shown.exit_code == 0 and "5 pairs reviewed by 1 reviewers" in shown.output, shown.output
        refused = CliRunner().invoke(app, ["review", "export", "job_nope", "--out", str(out), "--url", url,
                                           "--key", reviewer_key])  # fmt: skip
        assert refused.exit_code != 0 and "404" in refused.output


def test_on_a_server_without_keys_the_reviewer_names_themselves_once(
    playwright_browser, teacher_dir: Path, pool_pairs: list[dict], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    env = {
        "AGPO_DATABASE_URL": f"sqlite:///{tmp_path / 'open.db'}",
        "AGPO_QUEUE": "local",
        "AGPO_AUTH": "false",
        "AGPO_TEACHER_MODEL": str(teacher_dir),
        "AGPO_SAMPLES": "1",
        "AGPO_MAX_TOKENS": "20",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running([["serve", "api", "--port", str(port)]], env, tmp_path, names=["api"]):
        wait_until(lambda: answers(url + "/healthz"), 120, "the API")
        api = httpx.Client(base_url=url, timeout=30)
        job = api.post("/v1/jobs", json={"pairs": pool_pairs[:4]}).json()
        wait_until(lambda: api.get(f"/v1/jobs/{job['id']}").json()["status"] == "completed", 180, "the job")
        page = playwright_browser.new_page()
        page.goto(f"{url}/review?job={job['id']}")
        page.wait_for_selector("#name:not([hidden])")
        assert "give your name" in page.inner_text("#login-error")
        page.fill("#name", "bea")
        page.press("#name", "Enter")
        page.wait_for_selector("#item .query")
        shown = page.get_attribute("#item", "data-custom-id")
        page.keyboard.press("Enter")
        page.wait_for_function(f"document.querySelector('#status').textContent.startsWith('saved {shown}')")
        page.reload()  # remembered: no second question
        page.wait_for_selector("#item .query")
        assert page.is_hidden("#login")
        page.close()
        (review,) = api.get(f"/v1/jobs/{job['id']}/reviews").json()["data"]
    assert review["reviewer"] == "bea" and review["custom_id"] == shown
