"""`GET /metrics`: the system's health in Prometheus' text format, behind a token.

`METRICS_TOKEN` unset: 404 (the endpoint does not exist). Otherwise the
scraper sends `Authorization: Bearer <METRICS_TOKEN>`; anything else gets
401. The web server runs several processes, so nothing is counted in
memory: every value is read at scrape time from the database and Redis,
by a collector made for that scrape. Each query costs the same with a
thousand submissions or ten million (docs/deploy.md, "Metrics"): totals
come from the counters kept exact by triggers (webapp/models/counters.py),
ages from index seeks, and attempt durations from a bounded window of the
newest attempts.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import datetime, timedelta

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from webapp.admin.status import SCHEDULER_KEYS, queue_health
from webapp.crypto import token_digest, token_matches
from webapp.delivery.queue import redis_connection
from webapp.extensions import db
from webapp.models import (
    PENDING,
    STATUSES,
    Attempt,
    DeliveryLog,
    FormSubmissionCount,
    Hook,
    HookStatusCount,
)
from webapp.models.base import utcnow
from webapp.models.counters import as_utc

bp = Blueprint("metrics", __name__)

#: Attempt durations are taken from the attempts started this recently ...
ATTEMPT_WINDOW = timedelta(minutes=5)
#: ... among at most this many of the newest (a primary-key range: bounded cost).
ATTEMPT_WINDOW_ROWS = 10_000
QUANTILES = (0.5, 0.9, 0.99)
ATTEMPT_OUTCOMES = ("success", "failure", "error")


@bp.get("/metrics")
def metrics() -> Response:
    token = current_app.config["METRICS_TOKEN"]
    if token is None:
        abort(404)
    scheme, _, candidate = request.headers.get("Authorization", "").partition(" ")
    # Digests of both sides: constant time, whatever the candidate's length.
    if scheme.lower() != "bearer" or not token_matches(candidate.strip(), token_digest(token)):
        return Response(
            "A valid METRICS_TOKEN is required.\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        FormhooksCollector(redis_connection(), current_app.config["SCHEDULER_INTERVAL"])
    )
    return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


class FormhooksCollector:
    """Reads every metric once, when Prometheus' registry collects it."""

    def __init__(self, connection: Redis, scheduler_interval: float) -> None:
        self.connection = connection
        self.scheduler_interval = scheduler_interval
        self.now = utcnow()

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "formhooks_up", "1 if the component answered this scrape", labels=["component"]
        )
        try:
            database = list(self._database())
            up.add_metric(["database"], 1)
        except SQLAlchemyError:
            db.session.rollback()
            database = []
            up.add_metric(["database"], 0)
        try:
            queues = list(self._redis())
            up.add_metric(["redis"], 1)
        except (RedisError, OSError):
            queues = []
            up.add_metric(["redis"], 0)
        yield up
        yield from database
        yield from queues

    # The database: counters, ages, attempt durations.

    def _database(self) -> Iterator[Metric]:
        submissions = db.session.scalar(select(func.coalesce(func.sum(FormSubmissionCount.n), 0)))
        yield GaugeMetricFamily(
            "formhooks_submissions", "Submissions stored", value=int(submissions)
        )
        deliveries = GaugeMetricFamily(
            "formhooks_deliveries",
            "Delivery logs (one per submission and hook) by status",
            labels=["status"],
        )
        by_status = dict.fromkeys(STATUSES, 0)
        rows = db.session.execute(
            select(HookStatusCount.status, func.sum(HookStatusCount.n)).group_by(
                HookStatusCount.status
            )
        )
        for status, count in rows:
            by_status[status] = int(count or 0)
        for status, count in by_status.items():
            deliveries.add_metric([status], count)
        yield deliveries
        yield GaugeMetricFamily(
            "formhooks_oldest_pending_delivery_age_seconds",
            "Age of the oldest pending delivery log, since its submission arrived (0: none)",
            value=self._age(_oldest_pending_created()),
        )
        yield GaugeMetricFamily(
            "formhooks_delivery_lag_seconds",
            "How long the most overdue pending delivery has been due (0: none is late)",
            value=self._age(
                db.session.scalar(
                    select(func.min(DeliveryLog.next_retry_at)).where(DeliveryLog.status == PENDING)
                )
            ),
        )
        yield from self._attempts()

    def _attempts(self) -> Iterator[Metric]:
        newest = db.session.scalar(select(func.max(Attempt.id))) or 0
        rows = db.session.execute(
            select(Attempt.outcome, Attempt.duration_ms).where(
                Attempt.id > newest - ATTEMPT_WINDOW_ROWS,
                Attempt.started_at >= self.now - ATTEMPT_WINDOW,
                Attempt.outcome.is_not(None),
            )
        ).all()
        window = int(ATTEMPT_WINDOW.total_seconds())
        recent = GaugeMetricFamily(
            "formhooks_recent_attempts",
            f"HTTP attempts started in the last {window} s, by outcome",
            labels=["outcome"],
        )
        for outcome in ATTEMPT_OUTCOMES:
            recent.add_metric([outcome], sum(1 for o, _ in rows if o == outcome))
        yield recent
        durations = GaugeMetricFamily(
            "formhooks_attempt_duration_seconds",
            f"Quantiles of the durations of the HTTP attempts started in the last {window} s "
            f"(at most the newest {ATTEMPT_WINDOW_ROWS}); absent when there were none",
            labels=["quantile"],
        )
        values = [ms / 1000 for _, ms in rows if ms is not None]
        for quantile, value in zip(QUANTILES, quantiles(values), strict=False):
            durations.add_metric([str(quantile)], value)
        yield durations

    # Redis: queues, workers, schedulers.

    def _redis(self) -> Iterator[Metric]:
        health = queue_health(self.connection)
        if not health.redis_ok:
            raise RedisError(health.error or "Redis unreachable")
        yield GaugeMetricFamily(
            "formhooks_queue_depth",
            "Jobs waiting to run: deliveries in the feed plus other RQ jobs",
            value=health.queued,
        )
        yield GaugeMetricFamily(
            "formhooks_scheduled_jobs",
            "Jobs held by rq-scheduler for later (retries, periodic jobs)",
            value=health.scheduled,
        )
        yield GaugeMetricFamily(
            "formhooks_workers", "RQ workers registered in Redis", value=len(health.workers)
        )
        beats = [w.last_heartbeat for w in health.workers if w.last_heartbeat is not None]
        if beats:
            yield GaugeMetricFamily(
                "formhooks_worker_heartbeat_age_seconds",
                "Seconds since the least recent heartbeat of a registered worker",
                value=max(self._age(beat) for beat in beats),
            )
        scheduler_ages = self._scheduler_heartbeat_ages()
        yield GaugeMetricFamily(
            "formhooks_schedulers", "rq-scheduler instances alive", value=len(scheduler_ages)
        )
        if scheduler_ages:
            yield GaugeMetricFamily(
                "formhooks_scheduler_heartbeat_age_seconds",
                "Seconds since the most recent rq-scheduler heartbeat",
                value=min(scheduler_ages),
            )

    def _scheduler_heartbeat_ages(self) -> list[float]:
        """Ages of the live schedulers' heartbeats, from their keys' time to live.

        rq-scheduler renews its key's expiry to interval + 10 s at each
        heartbeat, so the time already spent off that is the heartbeat's age.
        """
        lifetime = int(self.scheduler_interval) + 10
        ages = []
        for key in self.connection.scan_iter(match=SCHEDULER_KEYS, count=100):
            if self.connection.hexists(key, "death"):
                continue
            ttl_ms = self.connection.pttl(key)
            if ttl_ms >= 0:
                ages.append(max(0.0, lifetime - ttl_ms / 1000))
        return ages

    def _age(self, moment: datetime | str | None) -> float:
        moment = as_utc(moment)
        if moment is None:
            return 0.0
        return max(0.0, (self.now - moment).total_seconds())


def _oldest_pending_created() -> datetime | None:
    """The oldest pending log's creation time: one index seek per hook.

    The (hook_id, status, date_created) index answers each hook's oldest
    pending log directly, so the cost grows with hooks, not with logs.
    """
    per_hook = (
        select(func.min(DeliveryLog.date_created))
        .where(DeliveryLog.hook_id == Hook.id, DeliveryLog.status == PENDING)
        .correlate(Hook)
        .scalar_subquery()
    )
    oldest = select(per_hook.label("created")).select_from(Hook).subquery()
    return as_utc(db.session.scalar(select(func.min(oldest.c.created))))


def quantiles(values: list[float]) -> list[float]:
    """QUANTILES of `values` (inclusive method); [] when there are none."""
    if not values:
        return []
    if len(values) == 1:
        return [values[0]] * len(QUANTILES)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return [cuts[round(q * 100) - 1] for q in QUANTILES]
