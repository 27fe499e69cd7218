"""Submissions with real multi-megabyte bodies, and the peak memory of a request.

Lists must not grow with body sizes: these helpers store big rows directly
(as ingest would, without parsing 90 MB in the test) and measure what a
request allocates in Python with tracemalloc.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from typing import Any

BIG = 9 * 1024 * 1024


def add_big_submissions(app, form_uid: str, count: int = 10, size: int = BIG) -> list[int]:
    """Store `count` JSON submissions of about `size` bytes each; returns their ids, oldest first.

    Each has a real body and its parsed `data` (a string value of `size`
    bytes). The first row is stored from Python; the database copies it for
    the others, so the test never holds more than one body.
    """
    from sqlalchemy import insert, literal, select

    from webapp.extensions import db
    from webapp.models import Form, Submission

    data = {"n": 0, "blob": "x" * (size - 64), "meta": {"instanceID": "uuid:big-0"}}
    with app.app_context():
        form_id = db.session.scalar(select(Form.id).where(Form.uid == form_uid))
        first = Submission(
            form_id=form_id,
            instance_id="uuid:big-0",
            source_format="json",
            content_type="application/json",
            body=json.dumps(data).encode(),
            data=data,
        )
        db.session.add(first)
        db.session.commit()
        ids = [first.id]
        del data
        db.session.expunge_all()
        copied = ("form_id", "source_format", "content_type", "body", "data", "edit_count")
        for i in range(1, count):
            columns = [getattr(Submission, name) for name in copied]
            source = select(*columns, literal(f"uuid:big-{i}")).where(Submission.id == ids[0])
            ids.append(
                db.session.scalar(
                    insert(Submission)
                    .from_select([*copied, "instance_id"], source)
                    .returning(Submission.id)
                )
            )
        db.session.commit()
    return ids


def peak_memory(call: Callable[[], Any]) -> tuple[Any, int]:
    """(what `call()` returned, the peak bytes Python allocated meanwhile)."""
    tracemalloc.start()
    try:
        result = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak
