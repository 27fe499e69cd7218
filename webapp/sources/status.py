"""Sources that need a person: for the dashboard and the failure digest."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from webapp.extensions import db
from webapp.models import Source
from webapp.models.sources import SOURCE_ERROR


def sources_in_error() -> list[Source]:
    """Active sources whose last poll failed, oldest error first, with their forms."""
    return list(
        db.session.scalars(
            select(Source)
            .options(joinedload(Source.form))
            .where(Source.active.is_(True), Source.status == SOURCE_ERROR)
            .order_by(Source.error_since, Source.id)
        )
    )
