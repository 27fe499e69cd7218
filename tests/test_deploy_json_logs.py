"""LOG_FORMAT=json: every line a JSON object, with no secret in it."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from tests.helpers import SECRET_KEY, free_port
from webapp.config import ConfigError
from webapp.log_format import _JsonHandler

REDIS_PASSWORD = "redis-pass-Zq8Lr1"
HOOK_PASSWORD = "hook-pass-Wm3Xt7"
HEADER_VALUE = "header-secret-Kp4Vn2"


@pytest.fixture
def restore_logging():
    """create_app() configures the process's root logger: put it back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_warning_with_secrets_around_is_one_json_line_without_them(
    make_app, make, capfd, restore_logging
):
    form_uid, ingest_token = make.form()
    make.hook(
        form_uid,
        endpoint="https://crm.example.org/hook",
        auth_level="basic_auth",
        username="crm",
        password=HOOK_PASSWORD,
        custom_headers={"X-Api-Key": HEADER_VALUE},
    )
    capfd.readouterr()
    # Redis is down (its URL carries a password): the submission is stored and
    # the feed's failure is logged, with the error's text.
    app = make_app(
        LOG_FORMAT="json", REDIS_URL=f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0"
    )
    response = app.test_client().post(
        f"/api/v1/forms/{form_uid}/submissions",
        json={"_uuid": str(uuid.uuid4())},
        headers={"Authorization": f"Bearer {ingest_token}"},
    )
    assert response.status_code == 201
    err = capfd.readouterr().err
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    [queued] = [r for r in records if r["message"].startswith("Could not queue")]
    assert queued["level"] == "WARNING"
    assert queued["logger"] == "webapp.delivery.feed"
    assert queued["timestamp"].endswith("+00:00")
    assert "connecting to 127.0.0.1" in queued["message"]  # the cause is there
    for secret in (REDIS_PASSWORD, HOOK_PASSWORD, HEADER_VALUE, ingest_token, SECRET_KEY):
        assert secret not in err


def test_text_is_the_default_and_other_values_stop_start_up(make_app, restore_logging):
    make_app()
    assert not any(isinstance(h, _JsonHandler) for h in logging.getLogger().handlers)
    with pytest.raises(ConfigError, match="LOG_FORMAT must be one of text, json"):
        make_app(LOG_FORMAT="logfmt")


def test_one_json_handler_however_many_apps(make_app, restore_logging):
    logging.getLogger().addHandler(logging.StreamHandler())  # basicConfig's, as in worker.py
    make_app(LOG_FORMAT="json")
    make_app(LOG_FORMAT="json")
    root = logging.getLogger()
    assert [type(h) for h in root.handlers if type(h) in (_JsonHandler, logging.StreamHandler)] == [
        _JsonHandler
    ]
    assert root.level <= logging.INFO
