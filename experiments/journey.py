"""The whole journey on the embedded default: pairs -> the teacher through the real service -> a student.

Steps (each a plain function; :func:`run` strings them together):

1. the data (:mod:`experiments.journey_data`): real Home Depot pairs rated by people (the default), or the
   synthetic benchmark; a pool to label with its labels held back, dev and test;
2. start the annotation API as a process on SQLite (a Celery worker process too when Redis answers);
3. submit the pool as a job over HTTP and follow it;
4. measure the teacher's labels against the pool's held-back labels;
5. train a student on the teacher's labels, evaluate it on test beside the zero-shot bi-encoder and the majority
   class, export it to ONNX (parity-checked);
6. score a few pairs through ``POST /v1/score`` and time it;
7. stop everything and write a self-contained Markdown report with PNG plots.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from experiments.journey_data import (
    DATA_SOURCES,
    DEFAULT_TEACHERS,
    DataSource,
    JourneyData,
    committed_test_labels,
    made_by,
    read_jsonl,
    real_data,
    synthetic_data,
    training_rows,
    write_jsonl,
)
from experiments.kit import plot_confusion
from llm.hardware import cpu_has_bf16
from services.procs import AGPO, QUIET_ENV, answers, free_port, running, wait_until

PASSK_PLOTS = ("docs/results/passk_study_test_easy.png", "docs/results/passk_study_test_hard.png")
PASSK_JSON = "docs/results/passk_study.json"
PASSK_METHODS = ("base", "grpo", "agpo", "dr_grpo", "nsr", "w_reinforce")


# Sizes per data source. Real: 1,000 live pairs label in about 2 minutes with the SmolLM2 teacher's overlap
# method; the student then sees about one pass over them and the 12,656 committed labels of the same teacher.
FULL: dict[DataSource, dict[str, Any]] = {
    "real": {"pool": 1000, "test": None, "dev": None, "student_steps": 400, "student_max_length": 64},
    # A fresh head needs hundreds of steps (student.train.epochs_for); 300 at batch 32 under bf16 autocast fit the
    # demo's 10 minutes on 2 cores.
    "synthetic": {"pool": 2000, "test": 1000, "dev": 300, "student_steps": 300, "student_max_length": 96},
}
# A smoke run of every stage: on a CPU without bf16 units 60 steps of 32 took two of its three minutes.
QUICK: dict[DataSource, dict[str, Any]] = {
    "real": {"pool": 64, "test": 400, "dev": 200},
    "synthetic": {"pool": 200, "test": 200, "dev": 100},
}
QUICK_COMMON = {"student_steps": 40, "student_batch_size": 16, "score_pairs": 16, "quick": True}


@dataclass
class JourneyConfig:
    out: Path
    data: DataSource = "real"
    teacher: Path | None = None  # None: the data's default teacher
    pool: int | None = None  # pairs labelled through the service (None: FULL[data])
    test: int | None = None  # real: a seeded subset of test (None: all); synthetic: gold-test pairs
    dev: int | None = None
    # 2 samples for a sampling teacher: the tiny teacher's labels score as with 4 (macro-F1 0.833 against 0.832)
    # and the journey fits its 10 minutes. The API's own default stays 4; a scoring teacher reads one answer.
    samples: int = 2
    max_tokens: int = 160
    student_steps: int | None = None
    student_batch_size: int = 32
    student_max_length: int | None = None
    score_pairs: int = 32
    seed: int = 0
    quick: bool = False
    broker_url: str = "redis://127.0.0.1:6379/0"
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data not in DATA_SOURCES:
            raise ValueError(f"data must be one of {', '.join(DATA_SOURCES)}, got {self.data!r}")
        self.teacher = self.teacher or DEFAULT_TEACHERS[self.data]
        sizes = {**FULL[self.data], **(QUICK[self.data] if self.quick else {})}
        for name, value in sizes.items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    @classmethod
    def quick_run(cls, out: Path, data: DataSource = "real", **kw: Any) -> JourneyConfig:
        return cls(out=out, data=data, **{**QUICK_COMMON, **kw})


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except Exception:
        return False


@contextmanager
def service(cfg: JourneyConfig, log: Callable[[str], None]) -> Iterator[tuple[str, str]]:
    """The API (and a worker when Redis answers) as processes on a SQLite file in the output folder."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    use_celery = redis_answers(cfg.broker_url)
    env = {
        **os.environ,
        **QUIET_ENV,
        # The worker labels while the API idles (and nothing else runs): it may use the machine's cores.
        "OMP_NUM_THREADS": str(min(os.cpu_count() or 1, 4)),
        "AGPO_DATABASE_URL": f"sqlite:///{cfg.out / 'service.db'}",
        "AGPO_QUEUE": "celery" if use_celery else "local",
        "AGPO_BROKER_URL": cfg.broker_url,
        "AGPO_TEACHER_MODEL": str(cfg.teacher),
        "AGPO_SAMPLES": str(cfg.samples),
        "AGPO_MAX_TOKENS": str(cfg.max_tokens),
        "AGPO_CHUNK_SIZE": "64",
        # The committed labels were made in bf16: where the CPU computes it in hardware the live labels are made
        # the same way (and about twice as fast); elsewhere in the weights' own dtype.
        "AGPO_TEACHER_DTYPE": "bfloat16" if cpu_has_bf16() else "auto",
        # The student is exported later in the run; /v1/score loads it on first use.
        "AGPO_STUDENT_MODEL": str(cfg.out / "student-onnx"),
    }
    logs = cfg.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    subprocess.run([AGPO, "db", "upgrade"], env=env, check=True, capture_output=True)
    key = (
        subprocess.run(
            [AGPO, "keys", "create", "--tenant", "journey"], env=env, check=True, capture_output=True, text=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    # A reviewer's key for the review page, kept beside the database it belongs to.
    reviewer = subprocess.run(
        [AGPO, "keys", "create", "--tenant", "journey", "--name", "reviewer", "--role", "reviewer"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    key_file = cfg.out / "reviewer.key"
    key_file.write_text(reviewer + "\n")
    key_file.chmod(0o600)
    # --beat: the stale-chunk sweep re-sends a chunk whose send or worker was lost.
    commands = [["serve", "api", "--port", str(port)]] + ([["worker", "--beat"]] if use_celery else [])
    with running(commands, env, logs) as procs:

        def up() -> bool:
            if procs[0].poll() is not None:
                raise RuntimeError(f"the API exited at start; see {logs}")
            return answers(url + "/healthz")

        wait_until(up, 120, f"the API on {url} (logs in {logs})")
        log(f"service up at {url} (queue: {'celery worker process' if use_celery else 'in-process worker'})")
        yield url, key


def load_data(cfg: JourneyConfig) -> JourneyData:
    assert cfg.teacher is not None and cfg.pool is not None  # JourneyConfig.__post_init__ filled every size
    if cfg.data == "real":
        return real_data(cfg.out, cfg.teacher, cfg.pool, cfg.seed, test=cfg.test, dev=cfg.dev)
    assert cfg.dev is not None and cfg.test is not None
    return synthetic_data(cfg.out, cfg.pool, cfg.seed, dev=cfg.dev, gold_test=cfg.test)


def annotate(url: str, key: str, pool: Path, out: Path, progress: Callable[[int, int, str], None]) -> dict[str, Any]:
    from services.client import TERMINAL, AnnotationClient

    with AnnotationClient(url, key) as client:
        job = client.create_job_jsonl(pool, idempotency_key=f"journey-{pool.stat().st_mtime_ns}")
        total = job["request_counts"]["total"]
        t0 = time.perf_counter()
        while job["status"] not in TERMINAL:
            time.sleep(1.0)
            job = client.get_job(job["id"])
            c = job["request_counts"]
            progress(c["completed"] + c["failed"], total, job["status"])
        seconds = time.perf_counter() - t0
        client.download_results(job["id"], out)
    job["wall_seconds"] = seconds
    return job


def review_link(cfg: JourneyConfig, url: str, job: dict[str, Any]) -> dict[str, Any]:
    """Checks that the job's review queue answers a reviewer, and says how to open it after the run."""
    reviewer = (cfg.out / "reviewer.key").read_text().strip()
    headers = {"Authorization": f"Bearer {reviewer}"}
    page = httpx.get(f"{url}/review", timeout=30)
    queue = httpx.get(f"{url}/v1/jobs/{job['id']}/queue", headers=headers, params={"limit": 1}, timeout=60)
    queue.raise_for_status()
    if page.status_code != 200 or queue.json()["total"] != job["request_counts"]["total"]:
        raise RuntimeError(f"the review page or queue did not answer: {page.status_code}, {queue.text[:200]}")
    return {
        "job_id": job["id"],
        # the path as given: relative to where the journey ran, as the rest of the report's paths
        "serve": f"AGPO_DATABASE_URL=sqlite:///{cfg.out / 'service.db'} agpo serve api --port 8000",
        "url": f"http://127.0.0.1:8000/review?job={job['id']}",
        "key_file": str(cfg.out / "reviewer.key"),
        "queue_total": queue.json()["total"],
    }


def teacher_quality(results: Path, answers: Path) -> dict[str, Any]:
    from relevance.metrics import evaluate_labels

    gold = {r["custom_id"]: r for r in map(json.loads, answers.read_text().splitlines())}
    rows = [json.loads(x) for x in results.read_text().splitlines()]
    y_true = [gold[r["custom_id"]]["label"] for r in rows]
    y_pred = [r["label"] for r in rows]
    confidences = [float(r.get("confidence") or 0.0) for r in rows]
    report = evaluate_labels(y_true, y_pred, confidences=confidences)
    report = report if isinstance(report, dict) else asdict(report)
    report["unparseable_rate"] = sum(r["status"] != "completed" for r in rows) / max(1, len(rows))
    report["_y"] = (y_true, y_pred, confidences)
    return report


def teacher_on_test(data: JourneyData, teacher: str | None) -> dict[str, Any] | None:
    """The teacher on the test pairs, from its committed labels of them (the journey does not relabel 3,301
    pairs); None when there are none, or another teacher made them."""
    from relevance.metrics import evaluate_labels

    labels = committed_test_labels(data, teacher)
    if labels is None:
        return None
    test = read_jsonl(data.test)
    report = evaluate_labels([p["meta"]["label"] for p in test], [labels.get(p["custom_id"]) for p in test])
    report = report if isinstance(report, dict) else asdict(report)
    return {k: report[k] for k in ("n", "accuracy", "macro_f1", "cohen_kappa")} | {"labels": str(data.committed_test)}


CASCADE_TARGET = 0.95


def student_first(
    data: JourneyData, student_dir: Path, teacher: str | None, log: Callable[[str], None]
) -> dict[str, Any] | None:
    """What a cascade job (``mode: cascade``) would save with this student: the threshold chosen on dev for 95%
    agreement with the teacher, judged on test; from the teacher's committed labels of both, so only when this
    teacher made them."""
    from experiments.cascade import run_cascade

    if not (made_by(data.committed_dev, teacher) and made_by(data.committed_test, teacher)):
        return None
    assert data.committed_dev is not None and data.committed_test is not None
    summary = run_cascade(
        student_dir, data.dev, data.committed_dev, data.test, data.committed_test, [CASCADE_TARGET], log
    )
    return {k: summary[k] for k in ("teacher_alone", "student_alone", "chosen_on_dev")}


def live_agreement(data: JourneyData, results: Path) -> dict[str, Any] | None:
    """How often the live labels equal the committed labels of the same pairs: the same teacher, method and
    prompt should give the same label, up to near ties that batched bf16 arithmetic can swap."""
    if data.committed_pool is None:
        return None
    committed = {line["custom_id"]: line for line in read_jsonl(data.committed_pool)}
    live = [line for line in read_jsonl(results) if line["custom_id"] in committed]
    same_teacher = [line for line in live if line.get("teacher") == committed[line["custom_id"]].get("teacher")]
    if not same_teacher:
        return None
    equal = sum(line.get("label") == committed[line["custom_id"]]["label"] for line in same_teacher)
    return {"pairs": len(same_teacher), "same_label": round(equal / len(same_teacher), 4)}


def score_through_api(url: str, key: str, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    first = httpx.post(f"{url}/v1/score", json={"pairs": pairs[:1]}, headers=headers, timeout=120)  # loads the model
    first.raise_for_status()
    single, batch = [], []
    for _ in range(20):
        t0 = time.perf_counter()
        httpx.post(f"{url}/v1/score", json={"pairs": pairs[:1]}, headers=headers, timeout=60).raise_for_status()
        single.append(time.perf_counter() - t0)
    for _ in range(5):
        t0 = time.perf_counter()
        r = httpx.post(f"{url}/v1/score", json={"pairs": pairs}, headers=headers, timeout=60)
        r.raise_for_status()
        batch.append(time.perf_counter() - t0)
    return {
        "pairs_per_request": len(pairs),
        "p50_ms_1_pair": round(1000 * sorted(single)[len(single) // 2], 2),
        "p50_ms_batch": round(1000 * sorted(batch)[len(batch) // 2], 2),
        "pairs_per_s_batch": round(len(pairs) / sorted(batch)[len(batch) // 2], 1),
        "variant": r.json()["data"][0]["model_version"].rsplit("/", 1)[-1],
        "sample": r.json()["data"][:3],
    }


def plot_calibration(series: dict[str, tuple[list[float], list[bool]]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from relevance.metrics import reliability_bins

    fig, ax = plt.subplots(figsize=(4.6, 4.0), dpi=120)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    for name, (conf, correct) in series.items():
        bins = [b for b in reliability_bins(conf, correct, n_bins=10) if b.count]
        ax.plot([b.confidence for b in bins], [b.accuracy for b in bins], marker="o", label=name)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("calibration")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_throughput(rows: dict[str, float], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 2.8), dpi=120)
    names = list(rows)
    ax.barh(names, [rows[n] for n in names], color=["#4c72b0", "#dd8452"][: len(names)])
    ax.set_xscale("log")
    ax.set_xlabel("pairs per second (log scale)")
    for i, n in enumerate(names):
        ax.text(rows[n], i, f" {rows[n]:.1f}", va="center")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def run(cfg: JourneyConfig, log: Callable[[str], None], progress: Callable[[int, int, str], None]) -> dict[str, Any]:
    """The journey (see the module docstring); returns the summary that the report renders."""
    from student.evaluate import evaluate
    from student.export import export
    from student.train import TrainConfig, train

    assert cfg.teacher is not None
    if not any((cfg.teacher / name).exists() for name in ("config.json", "adapter_config.json")):
        raise FileNotFoundError(f"teacher {cfg.teacher} not found: build it with `agpo teacher build`")
    cfg.out.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        cfg.timings[name] = round(now - clock, 1)
        clock = now

    data = load_data(cfg)
    lap("data")
    log(f"{cfg.data} data: pool {data.pool_size} pairs to label, dev {data.dev}, test {data.test}")
    results = cfg.out / "teacher_results.jsonl"
    with service(cfg, log) as (url, key):
        lap("service start")
        job = annotate(url, key, data.pool, results, progress)
        lap("annotation")
        log(f"job {job['id']} {job['status']}: {job['request_counts']}")
        review = review_link(cfg, url, job)
        teacher = teacher_quality(results, data.answers)
        teacher_id = job.get("teacher")
        rows, committed = training_rows(data, results, teacher_id)
        train_file = cfg.out / "student_train.jsonl"
        write_jsonl(rows, train_file)
        if data.committed_pool is not None:
            log(
                f"the student learns from {len(rows) - committed:,} live labels and {committed:,} committed labels "
                "of the same teacher"
                if committed
                else f"the committed labels are another teacher's than {teacher_id}: the student learns from the "
                "live labels alone"
            )
        student_dir = cfg.out / "student"
        # Hard labels: over 3 training seeds on the same teacher labels, hard targets reached gold-test macro-F1
        # 0.755-0.775 where the soft recipe (alpha 0.5, KD temperature 2) scattered over 0.608-0.719, around the
        # bi-encoder's 0.654 (docs/results/demo_recipe.md).
        train_cfg = TrainConfig(
            targets="hard",
            max_steps=cfg.student_steps or -1,
            batch_size=cfg.student_batch_size,
            max_length=cfg.student_max_length or 96,
            seed=cfg.seed,
            threads=os.cpu_count() or 1,  # the service is idle while the student trains
            bf16=True,
            progress=os.environ.get("AGPO_NO_PROGRESS") != "1",
        )
        log("training the student on the teacher's labels (checkpoint chosen on gold dev)...")
        trained = train(train_file, student_dir, train_cfg, source="teacher", dev_path=data.dev)
        lap("student training")
        student = evaluate(student_dir, data.test, dev_path=data.dev)
        lap("student evaluation")
        log("exporting to ONNX (fp32 + int8, parity-checked on dev)...")
        # An int8 model that disagrees with PyTorch beyond the gate is left out; fp32 (and bf16) still ship.
        exported = export(student_dir, cfg.out / "student-onnx", data.dev, overwrite=True, drop_failed_int8=True)
        if exported["parity"].get("int8_dropped"):
            log("[yellow]the int8 model failed its parity gate and was left out[/yellow]")
        lap("export")
        pairs = read_jsonl(data.test)[: cfg.score_pairs]
        scoring = score_through_api(url, key, pairs)
        lap("scoring")
    teacher_test = teacher_on_test(data, teacher_id)
    agreement = live_agreement(data, results)
    cascade = student_first(data, student_dir, teacher_id, log)
    lap("cascade")
    plots = cfg.out / "plots"
    plots.mkdir(exist_ok=True)
    y_true, y_pred, conf = teacher.pop("_y")
    labels = teacher["confusion"]["rows"]
    plot_confusion(
        [row[: len(labels)] for row in teacher["confusion"]["matrix"]],
        labels,
        plots / "teacher_confusion.png",
        "teacher on the pool (answer key)",
    )
    plot_confusion(
        student["student"]["confusion"]["matrix"],
        student["student"]["confusion"]["rows"],
        plots / "student_confusion.png",
        f"student on {'test' if cfg.data == 'real' else 'gold-test'}",
    )

    s = student["student"]
    series = {"teacher (confidence)": (conf, [a == b for a, b in zip(y_true, y_pred, strict=True)])}
    plot_calibration(series, plots / "calibration.png")
    teacher_rate = job["request_counts"]["total"] / max(job["wall_seconds"], 1e-9)
    plot_throughput(
        {"teacher via the service": teacher_rate, "student via /v1/score": scoring["pairs_per_s_batch"]},
        plots / "throughput.png",
    )
    for src in PASSK_PLOTS:
        if Path(src).exists():
            shutil.copy2(src, plots / Path(src).name)
    summary = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items() if k != "timings"},
        "data": {
            "source": data.source,
            "description": data.description,
            "test": str(data.test),
            "test_pairs": student["n"],
            "dev": str(data.dev),
        },
        "job": {
            k: job.get(k) for k in ("id", "status", "request_counts", "teacher", "samples", "decoding", "wall_seconds")
        },
        "teacher": {k: teacher[k] for k in ("n", "accuracy", "macro_f1", "cohen_kappa", "ece", "unparseable_rate")},
        "teacher_test": teacher_test,
        "live_vs_committed": agreement,
        "cascade": cascade,
        "review": review,
        "student_data": {"rows": len(rows), "live": len(rows) - committed, "committed": committed},
        "student": {
            k: s.get(k)
            for k in (
                "n",
                "accuracy",
                "macro_f1",
                "cohen_kappa",
                "ndcg@10",
                "roc_auc_exact",
                "ece_before_temperature",
                "ece_after_temperature",
            )
        },
        "baselines": {
            name: {k: b.get(k) for k in ("macro_f1", "accuracy", "cohen_kappa", "ndcg@10")}
            for name, b in student.get("baselines", {}).items()
        },
        "student_training": {"seconds": cfg.timings.get("student training"), "result": str(trained)[:300]},
        "export": {
            "files": exported.get("files"),
            "parity_ok": exported.get("parity", {}).get("ok"),
            "servable": exported.get("servable"),
        },
        "scoring": scoring,
        "throughput": {
            "teacher_pairs_per_s": round(teacher_rate, 2),
            "student_pairs_per_s": scoring["pairs_per_s_batch"],
        },
        "timings_s": cfg.timings,
    }
    (cfg.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    write_report(summary, cfg.out / "report.md")
    return summary


def _command(config: dict[str, Any]) -> str:
    parts = ["agpo journey"]
    if config.get("quick"):
        parts.append("--quick")
    if config["data"] != "real":
        parts.append(f"--data {config['data']}")
    if config["teacher"] != str(DEFAULT_TEACHERS[config["data"]]):
        parts.append(f"--teacher {config['teacher']}")
    if config["samples"] != JourneyConfig.samples:
        parts.append(f"--samples {config['samples']}")
    return " ".join([*parts, f"--seed {config['seed']}", "--out <folder>"])


def _metric_row(name: str, m: dict[str, Any] | None) -> str:
    if not m:
        return f"| {name} | n/a | n/a | n/a |"
    return f"| {name} | {_fmt(m.get('macro_f1'))} | {_fmt(m.get('cohen_kappa'))} | {_fmt(m.get('accuracy'))} |"


def _passk_section() -> str:
    if not Path(PASSK_JSON).exists():
        return ""
    pk = json.loads(Path(PASSK_JSON).read_text())["cells"]
    rows = []
    for method in (m for m in PASSK_METHODS if m in pk):
        for split in ("test_easy", "test_hard"):
            cell = pk[method].get(split, {})
            if cell:
                ks = sorted(cell, key=int)
                rows.append(f"| {method} | {split} | {cell[ks[0]][0]:.3f} | {cell[ks[-1]][0]:.3f} (k={ks[-1]}) |")
    table = "\n".join(["| model | split | pass@1 | pass@max k |", "| --- | --- | --- | --- |", *rows])
    return f"""## AGPO vs GRPO: pass@k (from `agpo study --config configs/study.yaml`, docs/results/passk_study.md)

Mean over three seeds at each method's dev-tuned learning rate.

{table}

![pass@k easy](plots/passk_study_test_easy.png) ![pass@k hard](plots/passk_study_test_hard.png)
"""


def _cascade_section(cascade: dict[str, Any] | None, test_name: str) -> str:
    if not cascade:
        return ""
    c, t = cascade["chosen_on_dev"][0], cascade["teacher_alone"]
    d = c["macro_f1_minus_teacher"]
    if c["threshold"] is None:
        return f"""
## Student-first labelling

No student confidence kept {c["target"]:.0%} agreement with the teacher on dev: a cascade job with this student
would leave every pair to the teacher.
"""
    return f"""
## Student-first labelling

With this student in front of the teacher (a job in `mode: cascade` with `cascade_threshold` {c["threshold"]:.3f},
the threshold chosen on dev for {c["target"]:.0%} agreement with the teacher's committed labels), the student would
have labelled {c["student_share"]:.1%} of {test_name} and the teacher the rest: macro-F1 {c["macro_f1"]:.3f} /
kappa {c["kappa"]:.3f} against the teacher alone's {t["macro_f1"]:.3f} / {t["kappa"]:.3f} (difference
{d["mean"]:+.3f}, 95% interval [{d["low"]:+.3f}, {d["high"]:+.3f}] over test pairs). `agpo student cascade` draws the
whole curve.
"""


def _review_section(review: dict[str, Any] | None) -> str:
    if not review:
        return ""
    return f"""## Review the teacher's labels

The job's {review["queue_total"]:,} labels wait in the review queue, the least sure first. Serve the run's
database and open the page, signing in with the reviewer's key in `{review["key_file"]}`:

    {review["serve"]}
    open {review["url"]}

"""


def write_report(summary: dict[str, Any], path: Path) -> Path:
    t, s, c, sc = summary["teacher"], summary["student"], summary["job"]["request_counts"], summary["scoring"]
    d, sd = summary["data"], summary["student_data"]
    real = d["source"] == "real"
    test_name = "Home Depot test" if real else "gold-test"
    answer_key = "the raters' labels, held back from the service" if real else "the pool's answer key"
    method = (summary["job"].get("decoding") or {}).get("method", "sample")
    agreement = summary.get("live_vs_committed")
    committed_note = (
        f"{sd['live']:,} live labels and {sd['committed']:,} labels the same teacher made of other unseen train rows "
        "earlier (committed in `relevance/real_data/teacher_labels`, so the journey need not relabel them)"
        if sd["committed"]
        else f"the {sd['live']:,} live labels"
    )
    if agreement:
        committed_note += (
            f"; on the {agreement['pairs']:,} live pairs the committed labels also cover, the two agree on "
            f"{agreement['same_label']:.1%}"
        )
    rows = [
        _metric_row(f"student (trained on {sd['rows']:,} teacher labels)", s),
        _metric_row("teacher (its committed labels of test)", summary.get("teacher_test"))
        if summary.get("teacher_test")
        else "",
        *(_metric_row(f"baseline: {name}", b) for name, b in summary["baselines"].items()),
    ]
    on_test = "\n".join(r for r in rows if r)
    text = f"""# AGPO Relevance: the journey on the embedded default

Data: {d["description"]}. The teacher labelled the pool through the annotation API; a student learned from the
teacher's labels, was measured on {test_name} ({d["test_pairs"]:,} pairs), exported to ONNX and served by
`POST /v1/score`.
Regenerate: `{_command(summary["config"])}`.

## Teacher (through the service)

Job `{summary["job"]["id"]}`: {c["total"]} pairs, {c["completed"]} labelled, {c["failed"]} failed, {c["cached"]} from
cache; teacher `{summary["job"]["teacher"]}`, label method `{method}`
({summary["job"]["samples"]} sample{"s" if summary["job"]["samples"] != 1 else ""} per pair).

| metric (pool, against {answer_key}) | value |
| --- | --- |
| accuracy | {_fmt(t["accuracy"])} |
| macro-F1 | {_fmt(t["macro_f1"])} |
| Cohen's kappa | {_fmt(t["cohen_kappa"])} |
| ECE of the confidence | {_fmt(t["ece"])} |
| unparseable rate | {_fmt(t["unparseable_rate"])} |

![teacher confusion](plots/teacher_confusion.png) ![calibration](plots/calibration.png)

## Student and references on {test_name}

The student learned from {committed_note}; its checkpoint was chosen on dev ({d["dev"]}).

| on {test_name} | macro-F1 | Cohen's kappa | accuracy |
| --- | --- | --- | --- |
{on_test}

| student | value |
| --- | --- |
| NDCG@10 (ESCI gains) | {_fmt(s["ndcg@10"])} |
| ROC-AUC Exact vs rest | {_fmt(s["roc_auc_exact"])} |
| ECE before / after temperature | {_fmt(s["ece_before_temperature"])} / {_fmt(s["ece_after_temperature"])} |

![student confusion](plots/student_confusion.png)
{_cascade_section(summary.get("cascade"), test_name)}
## Throughput (this machine, {os.cpu_count()} CPUs)

| path | pairs/s |
| --- | --- |
| teacher through API + queue + DB | {_fmt(summary["throughput"]["teacher_pairs_per_s"], 2)} |
| student through `/v1/score` ({sc["pairs_per_request"]} pairs per request) | {_fmt(sc["pairs_per_s_batch"], 1)} |

`/v1/score` serves the {sc["variant"]} variant (the fastest of those that passed their parity gate:
{", ".join(summary["export"]["servable"] or ["fp32"])}); p50 latency {sc["p50_ms_1_pair"]} ms for 1 pair,
{sc["p50_ms_batch"]} ms for {summary["scoring"]["pairs_per_request"]} pairs.

![throughput](plots/throughput.png)

{_review_section(summary.get("review"))}
{_passk_section()}
## Timings (s)

{json.dumps(summary["timings_s"])}
"""
    path.write_text(text)
    return path
