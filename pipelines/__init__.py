"""The annotation engine: storage, teacher backends, Celery tasks, job lifecycle and teacher-training recipes."""
