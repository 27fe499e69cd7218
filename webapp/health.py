"""`GET /healthz`: is the database reachable, is Redis reachable (README "A quick tour")."""

from __future__ import annotations

from flask import Blueprint, jsonify
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp.delivery.queue import redis_connection
from webapp.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    result = {"database": "ok", "redis": "ok"}
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        db.session.rollback()
        result["database"] = f"error: {exc.__class__.__name__}"
    try:
        redis_connection().ping()
    except RedisError as exc:
        result["redis"] = f"error: {exc.__class__.__name__}: {exc}"
    healthy = all(v == "ok" for v in result.values())
    return jsonify(result), 200 if healthy else 503
