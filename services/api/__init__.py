"""The annotation API (FastAPI): ``create_app()``, or ``uvicorn services.api:create_app --factory``."""

from services.api.app import create_app

__all__ = ["create_app"]
