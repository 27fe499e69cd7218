"""The worker class `rq worker-pool` runs in scripts/bench_workers.py.

Set up as worker.py sets up each of its processes (job modules preloaded in
the parent, the app created once per process, asynchronous commits on
PostgreSQL, a drain job told to stop on a warm shutdown), so the comparison
measures the supervisor and nothing else.
"""

from __future__ import annotations

from rq import SimpleWorker

import webapp.delivery.drainer  # noqa: F401 (preloaded in the pool's parent, as worker.py does)
import webapp.delivery.jobs  # noqa: F401


class Worker(SimpleWorker):
    def work(self, *args, **kwargs):
        """RQ's work loop inside the app, as worker.py's `run_one` runs it."""
        from webapp import create_app
        from worker import _asynchronous_commit

        app = create_app()
        with app.app_context():
            _asynchronous_commit(app)
            return super().work(*args, **kwargs)

    def request_stop(self, signum, frame):
        from webapp.delivery.drainer import Drainer

        Drainer.request_stop()  # a drain job in progress stops taking work
        super().request_stop(signum, frame)
