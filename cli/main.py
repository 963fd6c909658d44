"""The ``agpo`` command line: one root app; each module of this package owns one command group.

Top-level commands come from the modules' nameless apps (``agpo train``, ``agpo worker``, ``agpo annotate``,
``agpo journey``); named groups are mounted here, in one place, so the whole tree can be read off this file.
"""

from __future__ import annotations

import typer

from cli import jobs, journey, relevance, review, rl, service, student, tasks, teacher

app = typer.Typer(
    help="AGPO Relevance: AGPO for RL with verifiable rewards, a relevance teacher, an annotation service and "
    "distilled students.",
    no_args_is_help=True,
)
app.add_typer(journey.app)
app.add_typer(rl.app)
app.add_typer(rl.base_app, name="base")
app.add_typer(rl.bench_app, name="bench")
app.add_typer(relevance.app, name="relevance")
app.add_typer(teacher.app, name="teacher")
app.add_typer(student.app, name="student")
app.add_typer(service.app)
app.add_typer(service.serve_app, name="serve")
app.add_typer(service.db_app, name="db")
app.add_typer(service.keys_app, name="keys")
app.add_typer(jobs.app)
app.add_typer(jobs.jobs_app, name="jobs")
app.add_typer(review.review_app, name="review")
app.add_typer(tasks.tasks_app, name="tasks")

if __name__ == "__main__":
    app()
