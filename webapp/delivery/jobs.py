"""RQ job entry points. Each runs inside the app (created once per process)."""

from __future__ import annotations

import logging

from webapp.tasks import run_in_app as _in_app

log = logging.getLogger(__name__)


def deliver(log_id: int, bulk: bool = False) -> bool:
    """A retry is due (queued by rq-scheduler): put the log back in the feed.

    The drainer sends it, within the per-hook limit, so the retries of a dead
    or slow endpoint never hold a worker process for a whole timeout each.
    `bulk`: in the lane of backfills and replays. Returns False if Redis
    refused (the sweeper will push it).
    """
    from webapp.delivery import feed

    return _in_app(lambda: feed.push([log_id], bulk=bulk))


def drain() -> int:
    """Send what the delivery feed holds (see drainer.Drainer). Returns how many."""
    from webapp.delivery.drainer import Drainer

    return _in_app(lambda: Drainer().run())


def sweep() -> int:
    """Queue due logs that Redis lost (see sweeper.sweep_due_logs); look after bulk sends."""
    from webapp.bulk.progress import look_after
    from webapp.delivery.sweeper import sweep_due_logs

    def run() -> int:
        swept = sweep_due_logs()
        look_after()
        return swept

    return _in_app(run)


def fill_bulk() -> int:
    """Make the next batches of logs of the running backfills and replays (bulk.fill)."""
    from webapp.bulk.fill import fill

    return _in_app(fill)
