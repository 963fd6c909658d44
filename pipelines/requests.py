"""A job's label request, both ways: the columns a job row stores for a :class:`LabelRequest`, and the request
rebuilt from a job row. The one place that knows how a request is flattened onto a job."""

from __future__ import annotations

from typing import Any

from pipelines.annotate import LabelRequest
from pipelines.backends.base import Decoding
from pipelines.db.models import Job
from relevance.schemas import LabelSchema, get_schema
from relevance.tasks import Task, load_task


def job_columns(request: LabelRequest) -> dict[str, Any]:
    """The job row's fields that record ``request`` (the inverse of :func:`job_request`)."""
    task = request.task
    return {
        "task_id": task.id if task else None,
        "task": {"version": task.version, "spec": task.spec.model_dump(mode="json")} if task else None,
        "label_schema": request.label_schema,
        "prompt_template": request.prompt_template,
        "prompt_version": request.prompt_version,
        "samples": request.decoding.n,
        "decoding": {
            **request.decoding.record(),
            **({} if request.cascade_threshold is None else {"cascade_threshold": request.cascade_threshold}),
        },
    }


def job_request(job: Job, unparseable_retries: int) -> LabelRequest:
    """The request a job was created with; ``unparseable_retries`` is the worker's setting, not the job's."""
    d = job.decoding
    decoding = Decoding(
        n=job.samples,
        temperature=d["temperature"],
        top_p=d["top_p"],
        max_tokens=d["max_tokens"],
        stop=tuple(d.get("stop") or ()),
        seed=d.get("seed"),
        method=d.get("method", "sample"),  # jobs created before label methods existed sampled
    )
    return LabelRequest(
        job_schema(job),
        job.prompt_template,
        decoding,
        unparseable_retries,
        cascade_threshold=d.get("cascade_threshold"),
        task=job_task(job),
    )


def job_task(job: Job) -> Task | None:
    """The task a job was made under, from the copy its row keeps."""
    return load_task(job.task["spec"], job.task["version"], job.task_id) if job.task else None


def job_schema(job: Job) -> LabelSchema:
    """A job's label set: its task's, else the built-in schema it names."""
    task = job_task(job)
    return task.schema if task else get_schema(job.label_schema)
