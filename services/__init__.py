"""HTTP services: the annotation API, the OpenAI-compatible teacher server and the scoring API."""
