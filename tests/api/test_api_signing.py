"""A hook's signing secret in the API: for editors and admins only, rotated (docs/signatures.md)."""

from __future__ import annotations

from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from tests.helpers import Endpoint
from webapp.extensions import db
from webapp.models import Hook

ENDPOINT = "https://crm.example.org/hook"


def hooks_path(form_uid: str) -> str:
    return f"/api/v1/forms/{form_uid}/hooks"


def stored(app, hook_uid: str) -> tuple[str | None, str | None]:
    """(current, previous) signing secrets as stored, decrypted."""
    with app.app_context():
        hook = db.session.scalar(select(Hook).where(Hook.uid == hook_uid))
        box = app.extensions["formhooks.secret_box"]
        previous = hook.previous_signing_secret_encrypted
        return hook.signing_secret, box.decrypt(previous) if previous else None


def test_editors_and_admins_see_the_secret_viewers_do_not(api, make):
    form_uid = make.form()[0]
    created = api.post(hooks_path(form_uid), json={"name": "CRM", "endpoint": ENDPOINT})
    assert created.status_code == 201
    secret = created.json["signing_secret"]
    assert (
        secret.startswith("whsec_")
        and stored(api.client.application, created.json["uid"])[0] == secret
    )
    path = created.json["url"].removeprefix("http://localhost")
    for role in ("editor", "admin"):
        assert api.as_role(role).get(path).json["signing_secret"] == secret
        [listed] = api.as_role(role).get(hooks_path(form_uid)).json["results"]
        assert listed["signing_secret"] == secret
    viewer = api.as_role("viewer")
    viewer.bodies.clear()
    assert "signing_secret" not in viewer.get(path).json
    assert "signing_secret" not in viewer.get(hooks_path(form_uid)).json["results"][0]
    assert viewer.post(path + "/rotate-secret").status_code == 403
    key = secret.removeprefix("whsec_")
    assert not any(key in body for body in viewer.bodies)
    assert stored(api.client.application, created.json["uid"]) == (secret, None)


def test_each_hook_has_its_own_secret_and_a_patch_cannot_set_it(api, make):
    form_uid = make.form()[0]
    first = api.post(hooks_path(form_uid), json={"name": "A", "endpoint": ENDPOINT}).json
    second = api.post(hooks_path(form_uid), json={"name": "B", "endpoint": ENDPOINT}).json
    assert first["signing_secret"] != second["signing_secret"]
    path = first["url"].removeprefix("http://localhost")
    # A client sending back what it got (the secret included) changes nothing...
    sent_back = api.patch(path, json={**first, "name": "A2"})
    assert (
        sent_back.status_code == 200 and sent_back.json["signing_secret"] == first["signing_secret"]
    )
    # ...and neither does a secret of its own: the field is read-only.
    forged = "whsec_" + "A" * 44
    assert (
        api.patch(path, json={"signing_secret": forged}).json["signing_secret"]
        == (first["signing_secret"])
    )


def test_rotate_answers_the_hook_with_its_new_secret(api, make):
    form_uid = make.form()[0]
    hook = api.post(hooks_path(form_uid), json={"name": "CRM", "endpoint": ENDPOINT}).json
    path = hook["url"].removeprefix("http://localhost")
    for role in ("editor", "admin"):
        before = api.get(path).json["signing_secret"]
        response = api.as_role(role).post(path + "/rotate-secret")
        assert response.status_code == 200, response.json
        assert response.json["uid"] == hook["uid"]
        after = response.json["signing_secret"]
        assert after.startswith("whsec_") and after != before
        assert stored(api.client.application, hook["uid"]) == (after, before)
    missing = api.post(hooks_path(form_uid) + "/hNOPE/rotate-secret")
    assert missing.status_code == 404


def test_a_rotation_through_the_api_signs_with_both(app, api, make, worker):
    endpoint = Endpoint()
    try:
        form_uid, token = make.form()
        hook = api.post(hooks_path(form_uid), json={"name": "CRM", "endpoint": endpoint.url}).json
        old = hook["signing_secret"]
        path = hook["url"].removeprefix("http://localhost")
        new = api.post(path + "/rotate-secret").json["signing_secret"]
        response = api.client.post(
            f"/api/v1/forms/{form_uid}/submissions",
            json={"q": 1, "meta": {"instanceID": "uuid:signed"}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201
        worker()
        [received] = endpoint.wait_for(1)
    finally:
        endpoint.close()
    for secret in (new, old):
        assert Webhook(secret).verify(received["body"], received["headers"]) == {
            "q": 1,
            "meta": {"instanceID": "uuid:signed"},
        }


def test_the_openapi_document_describes_the_secret_and_the_rotation(client):
    document = client.get("/api/v1/openapi.json").json
    field = document["components"]["schemas"]["Hook"]["properties"]["signing_secret"]
    assert field["readOnly"] is True and "viewers" in field["description"]
    rotate = document["paths"]["/api/v1/forms/{form_uid}/hooks/{hook_uid}/rotate-secret"]
    assert set(rotate["post"]["responses"]) >= {"200", "401", "403", "404"}
    assert "signing_secret" not in document["components"]["schemas"]["HookInput"]["properties"]


def test_a_secret_the_key_cannot_read_is_null_until_rotated(api, make, make_app, tokens):
    form_uid = make.form()[0]
    hook = api.post(hooks_path(form_uid), json={"name": "CRM", "endpoint": ENDPOINT}).json
    path = hook["url"].removeprefix("http://localhost")
    other = make_app(ENCRYPTION_KEY="another key").test_client()
    auth = {"Authorization": f"Token {tokens['editor']}"}
    assert other.get(path, headers=auth).json["signing_secret"] is None
    rotated = other.post(path + "/rotate-secret", headers=auth).json["signing_secret"]
    assert rotated.startswith("whsec_")
    assert other.get(path, headers=auth).json["signing_secret"] == rotated
