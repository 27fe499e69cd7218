"""TRUSTED_PROXIES: the client's address, scheme and host as a reverse proxy passes them on."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.admin.admin_support import Browser, csrf_from
from webapp.config import ConfigError, load_config
from webapp.extensions import db
from webapp.models import ApiToken, LoginThrottle, User

# What nginx (deploy/debian/nginx/formhooks.conf) adds to a request from 203.0.113.9
# that itself claimed, in its own X-Forwarded-For, to come from 198.51.100.1.
FORWARDED = {
    "Host": "formhooks.example.org",
    "X-Forwarded-For": "198.51.100.1, 203.0.113.9",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "formhooks.example.org",
    "X-Forwarded-Port": "8443",
}


def _browser(app) -> Browser:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "127.0.0.1"  # the proxy
    return Browser(client)


def _failed_login(app) -> tuple[set[str], object]:
    """One wrong password through the proxy: the addresses throttled, and the answer."""
    browser = _browser(app)
    page = browser.client.get("/login", headers=FORWARDED)
    assert page.status_code == 200
    response = browser.client.post(
        "/login",
        data={
            "email": "alice@example.org",
            "password": "wrong",
            "csrf_token": csrf_from(page.text),
        },
        # Over HTTPS, Flask-WTF also wants a same-origin Referer, as browsers send.
        headers={**FORWARDED, "Referer": "https://formhooks.example.org:8443/login"},
    )
    assert response.status_code == 400, response.text  # a wrong password, not a CSRF refusal
    with app.app_context():
        addresses = {row.address for row in db.session.scalars(select(LoginThrottle))}
    return addresses, page


def _form_urls(app, make) -> dict:
    form_uid, _ = make.form()
    with app.app_context():
        user = User.by_email("alice@example.org")
        _, token = ApiToken.issue(user)
        db.session.commit()
    client = _browser(app).client
    answer = client.get(
        f"/api/v1/forms/{form_uid}", headers={**FORWARDED, "Authorization": f"Token {token}"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json


def test_one_trusted_proxy_gives_the_client_address_scheme_and_host(make_app, make):
    app = make_app(TRUSTED_PROXIES="1")
    addresses, page = _failed_login(app)
    # The address nginx saw, not the proxy's nor the one the client wrote.
    assert addresses == {"203.0.113.9"}
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    urls = _form_urls(app, make)
    assert urls["ingest_url"].startswith("https://formhooks.example.org:8443/api/v1/forms/")


def test_without_trusted_proxies_the_headers_are_ignored(app, make):
    assert app.config["TRUSTED_PROXIES"] == 0
    addresses, page = _failed_login(app)
    assert addresses == {"127.0.0.1"}
    assert "Strict-Transport-Security" not in page.headers
    assert _form_urls(app, make)["ingest_url"].startswith("http://formhooks.example.org/")


def test_the_setting_is_a_whole_number(tmp_path):
    base = {"SECRET_KEY": "x" * 32}
    assert load_config(base, str(tmp_path))["TRUSTED_PROXIES"] == 0
    assert load_config({**base, "TRUSTED_PROXIES": "2"}, str(tmp_path))["TRUSTED_PROXIES"] == 2
    for bad in ("-1", "yes", "1.5"):
        with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
            load_config({**base, "TRUSTED_PROXIES": bad}, str(tmp_path))
