"""The Procfile's `worker`: WORKER_CONCURRENCY RQ worker processes.

Each process is an RQ `SimpleWorker` (jobs run in the process, no fork per
job) with the app and the job modules loaded once; the parent only starts
them, restarts one that dies, and passes SIGTERM/SIGINT on (warm shutdown:
the current job finishes). See docs/performance.md for why SimpleWorker.

    python worker.py [--burst] [--concurrency N]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time

# Loaded once in the parent; forked children inherit these modules.
import webapp.delivery.drainer  # noqa: F401
import webapp.delivery.jobs  # noqa: F401
from webapp import create_app

log = logging.getLogger("formhooks.worker")


def run_one(index: int, burst: bool) -> None:
    """One worker process: the app, then RQ's work loop on the delivery queue."""
    from rq import SimpleWorker

    from webapp.delivery.drainer import Drainer
    from webapp.delivery.queue import delivery_queue, redis_connection

    class Worker(SimpleWorker):
        def request_stop(self, signum, frame):
            Drainer.request_stop()  # a drain job in progress stops taking work
            super().request_stop(signum, frame)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; SIGTERM is RQ's
    app = create_app()
    with app.app_context():
        _asynchronous_commit(app)
        connection = redis_connection()
        worker = Worker(
            [delivery_queue(connection)],
            connection=connection,
            name=f"{socket.gethostname()}.{os.getpid()}.{index}",
        )
        worker.work(burst=burst, logging_level="INFO")


def _asynchronous_commit(app) -> None:
    """Worker transactions on PostgreSQL commit without waiting for the disk.

    A worker only moves deliveries along; a change lost in a database crash
    makes a log be sent again, never lost (see webapp/delivery/drainer.py).
    Submissions are stored by the web process, whose commits stay synchronous.
    """
    from sqlalchemy import event

    from webapp.extensions import db

    if db.engine.dialect.name != "postgresql":
        return

    @event.listens_for(db.engine, "connect")
    def _on_connect(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")
        dbapi_connection.commit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="worker processes (default: WORKER_CONCURRENCY)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    app = create_app()  # validates the configuration before anything starts
    concurrency = args.concurrency or app.config["WORKER_CONCURRENCY"]
    from webapp.extensions import db

    with app.app_context():
        db.engine.dispose()  # no connection crosses a fork
    context = multiprocessing.get_context("fork")
    stopping = False
    children: dict[int, multiprocessing.Process] = {}

    def start(index: int) -> None:
        process = context.Process(target=run_one, args=(index, args.burst), name=f"worker-{index}")
        process.start()
        children[index] = process

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for process in children.values():
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("Starting %d worker process(es)", concurrency)
    for index in range(concurrency):
        start(index)
    while children:
        for index, process in list(children.items()):
            process.join(timeout=0.2)
            if process.is_alive():
                continue
            del children[index]
            if not stopping and not args.burst and process.exitcode != 0:
                log.warning("Worker %d exited with %s; restarting it", index, process.exitcode)
                time.sleep(1)
                start(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
