"""Managed Redis over TLS: a real redis-server with TLS on and a self-signed certificate.

With REDIS_SSL_CERT_REQS=none every connection the app makes (web, RQ
worker, rq-scheduler) goes over TLS and a submission is delivered; with the
default (`required`) the certificate is refused with an error naming the
setting, and a submission posted meanwhile is still stored.
"""

from __future__ import annotations

import pytest
from redis import Redis
from redis.connection import SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import func, select

from tests.helpers import fixture_bytes, make_retries_due, run_worker
from webapp.config import ConfigError, load_config
from webapp.delivery import queue as q
from webapp.extensions import db
from webapp.models import DeliveryLog, Submission
from webapp.tasks.schedule import periodic_jobs


@pytest.fixture
def app_env(app_env, tls_redis):
    app_env.update(
        REDIS_URL=tls_redis.url,
        REDIS_SSL_CERT_REQS="none",
        SSRF_ALLOWED_NETWORKS="127.0.0.0/8",
        DELIVERY_TIMEOUT="5",
    )
    return app_env


def post(client, form_uid: str, token: str):
    return client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        data=fixture_bytes("nested.json"),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


def test_none_delivers_over_tls_through_rq_and_rq_scheduler(app, client, make, endpoint):
    endpoint.statuses = [503, 200]  # the second try goes through rq-scheduler
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    assert post(client, form_uid, token).status_code == 201
    with app.app_context():
        connection = q.redis_connection()
        assert issubclass(connection.connection_pool.connection_class, SSLConnection)
    run_worker(app)
    make_retries_due(app)
    run_worker(app)
    assert [r["body"] for r in endpoint.requests] == [fixture_bytes("nested.json")] * 2
    with app.app_context():
        [entry] = db.session.scalars(select(DeliveryLog)).all()
        assert (entry.status, entry.tries) == ("success", 2)
    assert client.get("/healthz").json == {"database": "ok", "redis": "ok"}
    # The scheduler process's command registers its periodic jobs over TLS too.
    result = app.test_cli_runner().invoke(args=["scheduler", "--burst"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        periodic = {j.id for j in q.scheduler().get_jobs() if j.id.startswith("fh-periodic-")}
    assert periodic == {job.job_id for job in periodic_jobs(app)}
    assert len(periodic) >= 2  # at least the sweeper and the failure digests


def test_required_refuses_a_self_signed_certificate_naming_the_setting(
    make_app, app_env, make, endpoint
):
    strict = make_app(REDIS_SSL_CERT_REQS="")  # unset: the default, required
    assert strict.config["REDIS_SSL_CERT_REQS"] == "required"
    with strict.app_context(), pytest.raises(RedisConnectionError) as refused:
        q.redis_connection().ping()
    assert "certificate verify failed" in str(refused.value)
    assert "REDIS_SSL_CERT_REQS=none" in str(refused.value)
    client = strict.test_client()
    health = client.get("/healthz")
    assert health.status_code == 503
    assert "REDIS_SSL_CERT_REQS" in health.json["redis"]
    # Accepted data is never lost: stored, and left due for the sweeper.
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    assert post(client, form_uid, token).status_code == 201
    with strict.app_context():
        assert db.session.scalar(select(func.count()).select_from(Submission)) == 1
        [entry] = db.session.scalars(select(DeliveryLog)).all()
        assert entry.status == "pending" and entry.next_retry_at is not None


def test_the_setting_is_parsed_strictly(tmp_path):
    base = {"REDIS_URL": "rediss://127.0.0.1:1/0", "SECRET_KEY": "x" * 32}
    assert load_config(base, str(tmp_path))["REDIS_SSL_CERT_REQS"] == "required"
    assert load_config({**base, "REDIS_SSL_CERT_REQS": "NONE"}, str(tmp_path))[
        "REDIS_SSL_CERT_REQS"
    ] == ("none")
    for bad in ("optional", "false", "0", "cert_none"):
        with pytest.raises(ConfigError, match="REDIS_SSL_CERT_REQS must be one of"):
            load_config({**base, "REDIS_SSL_CERT_REQS": bad}, str(tmp_path))


def test_plain_redis_urls_ignore_the_setting(make_app, redis_server):
    plain = make_app(REDIS_URL=redis_server.url, REDIS_SSL_CERT_REQS="none")
    with plain.app_context():
        connection: Redis = q.redis_connection()
        assert not issubclass(connection.connection_pool.connection_class, SSLConnection)
        assert connection.ping()
