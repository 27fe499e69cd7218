"""The settings, the periodic job, the command and the record of runs."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from tests.helpers import SECRET_KEY, run_worker
from tests.retention.retention_support import age, counts, post, recorded_runs
from webapp.config import ConfigError, load_config
from webapp.delivery import queue as q
from webapp.extensions import db
from webapp.models import DeliveryLog, RetentionRun
from webapp.tasks.schedule import periodic_jobs


def config(tmp_path, **env) -> dict:
    return load_config({"SECRET_KEY": SECRET_KEY, **env}, str(tmp_path))


def test_settings_are_whole_days_or_unset(tmp_path):
    unset = config(tmp_path)
    assert unset["SUBMISSION_RETENTION_DAYS"] is None and unset["LOG_RETENTION_DAYS"] is None
    empty = config(tmp_path, SUBMISSION_RETENTION_DAYS="", LOG_RETENTION_DAYS=" ")
    assert empty["SUBMISSION_RETENTION_DAYS"] is None and empty["LOG_RETENTION_DAYS"] is None
    set_ = config(tmp_path, SUBMISSION_RETENTION_DAYS="365", LOG_RETENTION_DAYS=" 30 ")
    assert (set_["SUBMISSION_RETENTION_DAYS"], set_["LOG_RETENTION_DAYS"]) == (365, 30)
    for name in ("SUBMISSION_RETENTION_DAYS", "LOG_RETENTION_DAYS"):
        for bad, message in (
            ("90d", "must be a whole number of days, not '90d'"),
            ("1.5", "must be a whole number of days"),
            ("0", "must be between 1 and 36500 days, not 0"),
            ("-7", "must be between 1 and 36500 days, not -7"),
            ("36501", "must be between 1 and 36500 days"),
        ):
            with pytest.raises(ConfigError, match=f"^{name} {message}") as raised:
                config(tmp_path, **{name: bad})
            assert "leave it unset to keep everything" in str(raised.value)


def test_a_bad_value_stops_the_app_at_start(make_app):
    with pytest.raises(ConfigError, match="SUBMISSION_RETENTION_DAYS"):
        make_app(SUBMISSION_RETENTION_DAYS="forever")


def test_unset_deletes_nothing_and_declares_no_job(app, client, make):
    form_uid, token = make.form()
    make.hook(form_uid)
    post(client, form_uid, token, "uuid:old")
    with app.app_context():
        db.session.execute(update(DeliveryLog).values(status="success"))
        db.session.commit()
    age(app, ["uuid:old"], 10_000)
    before = counts(app)
    assert "retention" not in {job.name for job in periodic_jobs(app)}
    result = app.test_cli_runner().invoke(args=["retention", "run"])
    assert result.exit_code == 0, result.output
    assert "Retention is off" in result.output and "Nothing was deleted" in result.output
    with app.app_context():
        from webapp.retention.runs import run_retention

        assert run_retention("schedule") is None
    assert counts(app) == before and recorded_runs(app) == []


def test_the_command_prints_what_it_did(make_app, make):
    app = make_app(SUBMISSION_RETENTION_DAYS="30", LOG_RETENTION_DAYS="7")
    client = app.test_client()
    form_uid, token = make.form()
    make.hook(form_uid)
    for instance_id in ("uuid:a", "uuid:b", "uuid:c"):
        post(client, form_uid, token, instance_id)
    with app.app_context():
        db.session.execute(update(DeliveryLog).values(status="success"))
        db.session.commit()
    age(app, ["uuid:a", "uuid:b"], 31)
    result = app.test_cli_runner().invoke(args=["retention", "run", "--batch-size", "1"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Submissions older than 30 days: 2 deleted (with 2 delivery logs and 0 files); "
        "kept 0 with a pending delivery, 0 with a newer version, 0 in use (next run).",
        "Attempts of deliveries finished more than 7 days ago: 0 deleted.",
    ]
    (run,) = recorded_runs(app)
    assert (run.trigger, run.submission_days, run.log_days) == ("command", 30, 7)
    bad = app.test_cli_runner().invoke(args=["retention", "run", "--batch-size", "0"])
    assert bad.exit_code == 2 and "--batch-size" in bad.output
    capped = app.test_cli_runner().invoke(args=["retention", "run", "--max", "1"])
    assert capped.exit_code == 0 and "Stopped at the limit" not in capped.output  # nothing left


def test_the_periodic_job_runs_on_a_worker_and_is_recorded(make_app, make):
    app = make_app(SUBMISSION_RETENTION_DAYS="30")
    (job,) = [job for job in periodic_jobs(app) if job.name == "retention"]
    assert (job.func, job.interval) == ("webapp.retention.jobs.run", 3600)
    client = app.test_client()
    form_uid, token = make.form()
    post(client, form_uid, token, "uuid:old")  # no hook: nothing pending
    age(app, ["uuid:old"], 40)
    with app.app_context():
        q.delivery_queue(q.redis_connection()).enqueue(job.func)
    run_worker(app)
    (run,) = recorded_runs(app)
    assert (run.trigger, run.submissions_deleted, run.complete) == ("schedule", 1, True)
    assert run.finished_at >= run.started_at and run.error is None
    assert counts(app)["submissions"] == 0


def test_only_the_last_runs_are_kept(app, make_app):  # `app` empties the tables
    from webapp.models.retention import KEPT_RUNS

    app = make_app(LOG_RETENTION_DAYS="7")
    with app.app_context():
        db.session.add_all(RetentionRun(trigger="schedule") for _ in range(KEPT_RUNS))
        db.session.commit()
    assert app.test_cli_runner().invoke(args=["retention", "run"]).exit_code == 0
    runs = recorded_runs(app)
    assert len(runs) == KEPT_RUNS and runs[0].id == 2
    assert runs[-1].trigger == "command" and runs[-1].complete
