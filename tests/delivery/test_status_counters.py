"""Per-hook status counters (hook_status_counts), kept by database triggers.

After any mix of what the service does to delivery logs (ingest, delivery
and retries by a real worker, manual retries, disabling, deleting hooks,
submissions and forms, plain SQL), the counters' sums equal a fresh
GROUP BY over delivery_logs, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import random
import threading
import uuid

import pytest
from sqlalchemy import delete, func, insert, select, update

from tests.helpers import (
    LOOPBACK_HOOKS,
    assert_exact,
    assert_form_and_hour_counters_exact,
    make_retries_due,
    run_worker,
)
from webapp.delivery.retries import resume_paused, retry_failed, retry_log
from webapp.extensions import db
from webapp.models import (
    STATUSES,
    DeliveryLog,
    Form,
    FormSubmissionCount,
    Hook,
    HookStatusCount,
    Submission,
    form_submission_counts,
    hook_status_counts,
    hourly_log_counts,
)
from webapp.models.base import new_uid, utcnow

pytestmark = pytest.mark.settings(**LOOPBACK_HOOKS, RETRY_DELAYS="0,0,0")


def ingest(client, form_uid: str, token: str, instance_id: str | None = None) -> str:
    instance_id = instance_id or f"uuid:{uuid.uuid4()}"
    response = client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        data=json.dumps({"meta": {"instanceID": instance_id}, "q": 1}),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return instance_id


class World:
    """Forms and hooks made by the test, and the operations done at random on them."""

    def __init__(self, app, client, make, endpoint, rng: random.Random) -> None:
        self.app, self.client, self.make, self.endpoint, self.rng = (
            app,
            client,
            make,
            endpoint,
            rng,
        )
        self.forms: dict[str, str] = {}  # uid: token
        self.instances: dict[str, list[str]] = {}
        self.done: list[str] = []

    def new_form(self) -> str:
        form_uid, token = self.make.form(name=f"Form {len(self.forms)}")
        self.forms[form_uid] = token
        self.instances[form_uid] = []
        for _ in range(self.rng.randint(1, 3)):
            self.make.hook(form_uid, endpoint=self.endpoint.url, name="H")
        return form_uid

    def _form(self) -> str:
        return self.rng.choice(sorted(self.forms)) if self.forms else self.new_form()

    def _pick(self, model, *where):
        with self.app.app_context():
            ids = sorted(db.session.scalars(select(model.id).where(*where)))
        return self.rng.choice(ids) if ids else None

    # The operations; each returns nothing and leaves the database committed.

    def op_ingest(self) -> None:
        form_uid = self._form()
        for _ in range(self.rng.randint(1, 4)):
            self.instances[form_uid].append(ingest(self.client, form_uid, self.forms[form_uid]))

    def op_edit(self) -> None:  # a re-post of a known instance: no new log
        form_uid = self._form()
        if self.instances[form_uid]:
            ingest(
                self.client,
                form_uid,
                self.forms[form_uid],
                self.rng.choice(self.instances[form_uid]),
            )

    def op_deliver(self) -> None:
        self.endpoint.statuses = [self.rng.choice([200, 500, 503]) for _ in range(20)]
        run_worker(self.app)
        if self.rng.random() < 0.5:
            make_retries_due(self.app)
            run_worker(self.app)

    def op_retry_hook(self) -> None:
        hook_id = self._pick(Hook)
        if hook_id:
            with self.app.app_context():
                retry_failed(db.session.get(Hook, hook_id))

    def op_retry_log(self) -> None:
        log_id = self._pick(DeliveryLog, DeliveryLog.status == "failed")
        if log_id:
            with self.app.app_context():
                assert retry_log(db.session.get(DeliveryLog, log_id))

    def op_toggle_hook(self) -> None:
        hook_id = self._pick(Hook)
        if hook_id:
            with self.app.app_context():
                hook = db.session.get(Hook, hook_id)
                hook.active = not hook.active
                db.session.commit()
                if hook.active:
                    resume_paused(hook)

    def op_add_hook(self) -> None:
        self.make.hook(self._form(), endpoint=self.endpoint.url, name="Added")

    def op_delete_hook(self) -> None:  # as the panel and the API do
        hook_id = self._pick(Hook)
        if hook_id:
            with self.app.app_context():
                db.session.delete(db.session.get(Hook, hook_id))
                db.session.commit()

    def op_delete_submission(self) -> None:
        submission_id = self._pick(Submission)
        if submission_id:
            with self.app.app_context():
                db.session.delete(db.session.get(Submission, submission_id))
                db.session.commit()

    def op_delete_form(self) -> None:
        if len(self.forms) < 2:
            return
        form_uid = self.rng.choice(sorted(self.forms))
        with self.app.app_context():
            db.session.delete(db.session.scalar(select(Form).where(Form.uid == form_uid)))
            db.session.commit()
        del self.forms[form_uid], self.instances[form_uid]

    def op_bulk_sql(self) -> None:
        """One UPDATE and one DELETE each touching several hooks and statuses."""
        with self.app.app_context():
            ids = sorted(db.session.scalars(select(DeliveryLog.id)))
            if not ids:
                return
            chosen = self.rng.sample(ids, min(len(ids), self.rng.randint(1, 8)))
            status = self.rng.choice(STATUSES)
            db.session.execute(
                update(DeliveryLog).where(DeliveryLog.id.in_(chosen)).values(status=status)
            )
            doomed = self.rng.sample(ids, min(len(ids), self.rng.randint(0, 3)))
            db.session.execute(delete(DeliveryLog).where(DeliveryLog.id.in_(doomed)))
            db.session.commit()

    def op_move_logs(self) -> None:
        """Logs change hook (hook_id updated): they count for their new hook."""
        hook_id = self._pick(Hook)
        if not hook_id:
            return
        with self.app.app_context():
            hook = db.session.get(Hook, hook_id)
            target = Hook(form_id=hook.form_id, name="Moved to", endpoint=self.endpoint.url)
            db.session.add(target)
            db.session.flush()
            db.session.execute(
                update(DeliveryLog).where(DeliveryLog.hook_id == hook_id).values(hook_id=target.id)
            )
            db.session.commit()

    def op_rolled_back(self) -> None:
        """Changes rolled back leave the counters as they were."""
        with self.app.app_context():
            db.session.execute(update(DeliveryLog).values(status="failed"))
            db.session.execute(delete(DeliveryLog).where(DeliveryLog.id % 2 == 0))
            db.session.rollback()

    def step(self) -> None:
        names = [name for name in dir(self) if name.startswith("op_")]
        weights = {"op_ingest": 5, "op_deliver": 4}
        name = self.rng.choices(names, [weights.get(n, 1) for n in names])[0]
        getattr(self, name)()
        self.done.append(name)


@pytest.mark.parametrize("seed", [7, 2026])
def test_counters_equal_a_group_by_after_random_operations(app, client, make, endpoint, seed):
    rng = random.Random(seed)
    world = World(app, client, make, endpoint, rng)
    for _ in range(3):
        world.new_form()
    world.op_ingest()
    for _ in range(30):
        world.step()
        try:
            assert_exact(app)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}, after {world.done}") from exc
    # Every kind of operation ran, and the counts are not trivially empty.
    assert {"op_ingest", "op_deliver"} <= set(world.done), world.done
    world.op_ingest()
    world.op_deliver()
    assert sum(assert_exact(app).values()) > 0


def test_each_path_that_changes_logs(app, client, make, endpoint):
    """The paths one by one, with the counts they must give."""
    form_uid, token = make.form()
    other_uid, other_token = make.form(name="Other")
    ok_uid = make.hook(form_uid, endpoint=endpoint.url, name="ok")
    make.hook(form_uid, endpoint=endpoint.url, name="second")
    make.hook(other_uid, endpoint=endpoint.url)

    def counts(uid):
        with app.app_context():
            hook = db.session.scalar(select(Hook).where(Hook.uid == uid))
            return hook_status_counts([hook.id])[hook.id]

    first = ingest(client, form_uid, token)
    ingest(client, form_uid, token)
    ingest(client, other_uid, other_token)
    assert counts(ok_uid) == {"pending": 2, "success": 0, "failed": 0}
    ingest(client, form_uid, token, first)  # an edit sends nothing
    assert counts(ok_uid) == {"pending": 2, "success": 0, "failed": 0}
    assert_exact(app)

    endpoint.statuses = [500]
    for _ in range(4):  # 4 tries, then failed
        run_worker(app)
        make_retries_due(app)
    assert counts(ok_uid) == {"pending": 0, "success": 0, "failed": 2}
    assert_exact(app)

    with app.app_context():
        hook = db.session.scalar(select(Hook).where(Hook.uid == ok_uid))
        assert retry_failed(hook) == 2
    assert counts(ok_uid) == {"pending": 2, "success": 0, "failed": 0}
    endpoint.statuses = [200]
    run_worker(app)
    assert counts(ok_uid) == {"pending": 0, "success": 2, "failed": 0}
    assert_exact(app)

    # A submission deleted: one log less on each hook of its form.
    with app.app_context():
        submission = db.session.scalar(select(Submission).where(Submission.instance_id == first))
        db.session.delete(submission)
        db.session.commit()
    assert counts(ok_uid) == {"pending": 0, "success": 1, "failed": 0}
    assert_exact(app)

    # A form deleted: its hooks, their logs and their counters go; the other form stays.
    with app.app_context():
        form = db.session.scalar(select(Form).where(Form.uid == form_uid))
        db.session.delete(form)
        db.session.commit()
    truth = assert_exact(app)
    assert sum(truth.values()) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(HookStatusCount)) >= 1
        remaining = set(db.session.scalars(select(HookStatusCount.hook_id)))
        assert remaining == set(db.session.scalars(select(Hook.id)))


def test_hour_and_form_counters_follow_every_change(app, client, make, endpoint):
    """Logs spread over hours, moved in time, retried, deleted with their submission
    and their form; submissions counted per form through it all."""
    from datetime import timedelta

    form_uid, token = make.form()
    other_uid, other_token = make.form(name="Other")
    make.hook(form_uid, endpoint=endpoint.url)
    make.hook(other_uid, endpoint=endpoint.url)
    for _ in range(3):
        ingest(client, form_uid, token)
    ingest(client, other_uid, other_token)
    with app.app_context():
        now = utcnow()
        # Plain SQL moves two logs 5 and 30 hours back, one by a minute only.
        ids = list(db.session.scalars(select(DeliveryLog.id).order_by(DeliveryLog.id)))
        for log_id, back in zip(
            ids, (timedelta(hours=5), timedelta(hours=30), timedelta(minutes=1)), strict=False
        ):
            db.session.execute(
                update(DeliveryLog).where(DeliveryLog.id == log_id).values(date_created=now - back)
            )
        db.session.commit()
        assert_form_and_hour_counters_exact()
        hourly = hourly_log_counts(now - timedelta(days=2))
        assert sum(c["pending"] for c in hourly.values()) == 4
        assert len(hourly) >= 3
        # From the hour 24 hours ago on: the log 30 hours back is not in it.
        assert sum(c["pending"] for c in hourly_log_counts(now - timedelta(hours=24)).values()) == 3
        assert form_submission_counts([1, 2]) == {1: 3, 2: 1}
    endpoint.statuses = [200, 200, 200, 500]  # the last one repeats
    run_worker(app)
    with app.app_context():
        assert_form_and_hour_counters_exact()
        totals = dict.fromkeys(STATUSES, 0)
        for counts in hourly_log_counts(utcnow() - timedelta(days=2)).values():
            for status, count in counts.items():
                totals[status] += count
        assert totals == {"pending": 1, "success": 3, "failed": 0}
        submission = db.session.scalar(select(Submission).order_by(Submission.id))
        db.session.delete(submission)
        db.session.commit()
        assert_form_and_hour_counters_exact()
        db.session.delete(db.session.scalar(select(Form).where(Form.uid == form_uid)))
        db.session.commit()
        assert_form_and_hour_counters_exact()
        assert db.session.scalar(select(func.count()).select_from(FormSubmissionCount)) == 1
        remaining = hourly_log_counts(utcnow() - timedelta(days=2))
        assert sum(sum(counts.values()) for counts in remaining.values()) == 1


def test_panel_and_api_read_the_counters(app, client, make, endpoint):
    """The hook list, the form page, the logs tabs and the API show the counters.

    The counters are made to disagree with the logs on purpose (only a test
    writes them by hand): every page must show theirs, so none counts logs.
    """
    from tests.admin.admin_support import PASSWORD, Browser
    from webapp.models import ApiToken, User

    form_uid, token = make.form()
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    for _ in range(3):
        ingest(client, form_uid, token)
    endpoint.statuses = [200, 500]  # one delivered, then failures
    for _ in range(4):
        run_worker(app)
        make_retries_due(app)
    assert_exact(app)
    make.user("viewer@example.org", role="viewer", password=PASSWORD)
    with app.app_context():
        hook = db.session.scalar(select(Hook).where(Hook.uid == hook_uid))
        assert hook_status_counts([hook.id])[hook.id] == {"pending": 0, "success": 1, "failed": 2}
        db.session.add(HookStatusCount(hook_id=hook.id, status="failed", shard=999, n=1234))
        _, api_token = ApiToken.issue(User.by_email("viewer@example.org"))
        db.session.commit()
    browser = Browser(app.test_client())
    assert browser.login("viewer@example.org").status_code == 302

    hooks_page = browser.get(f"/forms/{form_uid}/hooks").text
    assert "✕</span> 1,236<" in hooks_page and "✓</span> 1<" in hooks_page
    assert "1236 failed" in browser.get(f"/forms/{form_uid}").text
    logs_page = browser.get(f"/forms/{form_uid}/hooks/{hook_uid}/logs").text
    assert '<span class="count">1,237</span>' in logs_page  # the "All" tab
    assert '<span class="count count-failed">1,236</span>' in logs_page
    assert "+</span>" not in logs_page  # exact counts, never capped
    detail = app.test_client().get(
        f"/api/v1/forms/{form_uid}/hooks/{hook_uid}",
        headers={"Authorization": f"Token {api_token}"},
    )
    assert (detail.json["failed_count"], detail.json["success_count"]) == (1236, 1)
    listed = app.test_client().get(
        f"/api/v1/forms/{form_uid}/hooks", headers={"Authorization": f"Token {api_token}"}
    )
    assert listed.json["results"][0]["failed_count"] == 1236


def test_concurrent_writers_neither_wait_nor_lose_counts(app, db_backend, make):
    """PostgreSQL: transactions open at the same time, all writing logs of the same
    two hooks (in opposite orders), each add to a shard of their own: none waits
    for another (they all meet at a barrier before committing), and the totals
    are exact. Sharing one counter row would block the second writer there."""
    if db_backend[0] != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has one writer at a time")
    threads, rounds, per_round = 8, 3, 5
    form_uid, _ = make.form()
    hook_uids = [make.hook(form_uid, name="A"), make.hook(form_uid, name="B")]
    with app.app_context():
        form_id = db.session.scalar(select(Form.id).where(Form.uid == form_uid))
        hook_ids = list(db.session.scalars(select(Hook.id).where(Hook.uid.in_(hook_uids))))
        now = utcnow()
        submission_ids = list(
            db.session.scalars(
                insert(Submission).returning(Submission.id, sort_by_parameter_order=True),
                [
                    {
                        "form_id": form_id,
                        "instance_id": f"uuid:{uuid.uuid4()}",
                        "source_format": "json",
                        "content_type": "application/json",
                        "body": b"{}",
                        "data": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for _ in range(threads * rounds * per_round)
                ],
            )
        )
        db.session.commit()
        engine = db.engine
    barrier = threading.Barrier(threads, timeout=30)
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        mine = submission_ids[number * rounds * per_round : (number + 1) * rounds * per_round]
        order = hook_ids if number % 2 else list(reversed(hook_ids))
        try:
            with engine.connect() as conn:
                for round_ in range(rounds):
                    batch = mine[round_ * per_round : (round_ + 1) * per_round]
                    with conn.begin():
                        for hook_id in order:
                            conn.execute(
                                insert(DeliveryLog),
                                [
                                    {"uid": new_uid("hl"), "hook_id": hook_id, "submission_id": s}
                                    for s in batch
                                ],
                            )
                        barrier.wait()  # all transactions are open, their counts written
                        conn.execute(
                            update(DeliveryLog)
                            .where(DeliveryLog.submission_id.in_(batch[:2]))
                            .values(status="success")
                        )
                        conn.execute(
                            delete(DeliveryLog).where(DeliveryLog.submission_id == batch[2])
                        )
                        barrier.wait()
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)
            barrier.abort()

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert errors == []
    truth = assert_exact(app)
    for hook_id in hook_ids:
        assert truth[(hook_id, "pending")] == threads * rounds * (per_round - 3)
        assert truth[(hook_id, "success")] == threads * rounds * 2
    with app.app_context():
        shards = db.session.scalar(
            select(func.count(func.distinct(HookStatusCount.shard))).where(
                HookStatusCount.hook_id == hook_ids[0]
            )
        )
    assert shards >= threads


def test_migration_counts_the_logs_already_there(app, client, make, endpoint):
    """Upgrading a database with logs backfills the counters (0003 and 0004);
    downgrading drops them."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import inspect

    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    make.hook(form_uid, endpoint=endpoint.url, name="Second")
    for _ in range(3):
        ingest(client, form_uid, token)
    endpoint.statuses = [200, 500]
    run_worker(app)
    with app.app_context():
        db.session.remove()
        try:
            downgrade(revision="0002_reports")
            tables = inspect(db.engine).get_table_names()
            assert not {"hook_status_counts", "form_submission_counts", "log_hour_counts"} & set(
                tables
            )
            # Logs written and deleted while no trigger runs.
            db.session.execute(
                update(DeliveryLog).where(DeliveryLog.id == 1).values(status="failed")
            )
            db.session.execute(delete(DeliveryLog).where(DeliveryLog.id == 2))
            db.session.commit()
            db.session.remove()
            upgrade()
        finally:
            db.session.remove()
            upgrade()  # back at head whatever happened
    truth = assert_exact(app)
    assert sum(truth.values()) == 5 and truth[(1, "failed")] >= 1
