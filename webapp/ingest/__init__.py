"""The webhook URL: `POST /api/v1/forms/<form_uid>/submissions` (docs/webhook.md)."""

from webapp.ingest.views import bp

__all__ = ["bp"]
