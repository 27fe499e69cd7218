"""Limit/offset pagination with KoboToolbox's (DRF's) envelope and parameter names.

`?limit=` (default 100, at most MAX_LIMIT, or the route's own cap) and
`?start=` (the offset). Answers are
`{"count", "next", "previous", "results"}`, with `next`/`previous` absolute
URLs (or null) that keep the other query arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Row, Select, func, select

from webapp.api.common import int_arg, request_url_with
from webapp.extensions import db

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def paginate(
    query: Select,
    serialize: Callable[[Sequence[Row]], list[dict[str, Any]]],
    *,
    count_query: Select | None = None,
    max_limit: int = MAX_LIMIT,
) -> dict[str, Any]:
    """Run one page of `query` (already ordered) and wrap it in the envelope.

    `serialize` gets the page's rows at once, so it can load what they need in
    a few queries rather than one per row. `count_query` (a `SELECT count(*)`)
    defaults to counting `query` without its ordering. A `limit` above
    `max_limit` is lowered to it.
    """
    limit = int_arg("limit", min(DEFAULT_LIMIT, max_limit), minimum=1, maximum=max_limit)
    start = int_arg("start", 0, minimum=0)
    if count_query is None:
        count_query = select(func.count()).select_from(query.order_by(None).subquery())
    count = db.session.scalar(count_query) or 0
    rows = db.session.execute(query.limit(limit).offset(start)).all()
    following = start + limit
    return {
        "count": count,
        "next": request_url_with(start=following, limit=limit) if following < count else None,
        "previous": (
            request_url_with(start=max(start - limit, 0), limit=limit) if start > 0 else None
        ),
        "results": serialize(rows),
    }
