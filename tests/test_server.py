"""The web server layer's pure parts: token masking in the access log, BODY_READ_TIMEOUT.

What they do in the running process is tested in tests/e2e/test_e2e_web_server.py.
"""

from __future__ import annotations

import pytest

from webapp.config import ConfigError, load_config
from webapp.server import mask_query, mask_target


@pytest.mark.parametrize(
    "query,masked",
    [
        ("token=abc123", "token=***"),
        ("a=1&token=abc123&b=2", "a=1&token=***&b=2"),
        ("%74oken=abc123", "%74oken=***"),
        ("token=a&token=b", "token=***&token=***"),
        ("tokens=abc&my_token=x", "tokens=abc&my_token=x"),
        ("token", "token"),
        ("", ""),
    ],
)
def test_mask_query(query, masked):
    assert mask_query(query) == masked


def test_mask_target_keeps_the_rest_of_the_line():
    line = "POST /api/v1/forms/f1/submissions?token=s3cret&x=1 HTTP/1.1"
    assert mask_target(line) == "POST /api/v1/forms/f1/submissions?token=***&x=1 HTTP/1.1"
    assert mask_target("https://example.org/a?token=s3cret") == "https://example.org/a?token=***"
    assert mask_target("/no/query token=x") == "/no/query token=x"


def test_body_read_timeout_is_parsed_strictly(tmp_path):
    env = {"SECRET_KEY": "k" * 32}
    assert load_config(env, str(tmp_path))["BODY_READ_TIMEOUT"] == 30.0
    assert (
        load_config({**env, "BODY_READ_TIMEOUT": "2.5"}, str(tmp_path))["BODY_READ_TIMEOUT"] == 2.5
    )
    for bad in ("abc", "0", "-1", "30s"):
        with pytest.raises(ConfigError, match="BODY_READ_TIMEOUT"):
            load_config({**env, "BODY_READ_TIMEOUT": bad}, str(tmp_path))
