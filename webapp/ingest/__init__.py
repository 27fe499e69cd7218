"""The webhook URL: `POST /api/v1/forms/<form_uid>/submissions` (SPEC §4)."""

from webapp.ingest.views import bp

__all__ = ["bp"]
