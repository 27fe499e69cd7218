"""Signed download links and serving (docs/attachments.md, "Links"): valid, expired,
altered, deleted; streamed with bounded memory; the panel's inline preview.
"""

from __future__ import annotations

import time
import tracemalloc
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from tests.attachments.attachment_support import (
    collect_upload,
    file_part,
    instance_part,
    logged_in,
    photo,
    post_parts,
    row_counts,
)
from webapp.attachments import links
from webapp.extensions import db
from webapp.models import Attachment, Form, Submission


def first_file(app) -> Attachment:
    with app.app_context():
        attachment = db.session.scalar(select(Attachment).order_by(Attachment.id))
        db.session.expunge(attachment)
        return attachment


def link(app, attachment: Attachment, at: float | None = None) -> str:
    with app.app_context():
        return links.download_url(attachment.uid, attachment.filename, at)


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_a_valid_link_downloads_the_file_with_safe_headers(app, client, make):
    form_uid, token = make.form()
    name, data, kind = photo(1)
    collect_upload(client, form_uid, token, files=[(name, data, kind)])
    url = link(app, first_file(app))
    assert url.startswith("http://127.0.0.1:5000/attachments/")  # a worker: no request
    answer = app.test_client().get(path_of(url))  # a new client: no session, no token
    assert answer.status_code == 200 and answer.data == data
    assert answer.headers["Content-Type"] == "image/jpeg"
    assert answer.headers["Content-Length"] == str(len(data))
    assert answer.headers["Content-Disposition"] == f"attachment; filename={name}"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in answer.headers["Content-Security-Policy"]


def test_links_are_built_on_base_url_or_on_the_request(app, make_app, client, make):
    form_uid, token = make.form()
    collect_upload(client, form_uid, token, files=[photo(1)])
    attachment = first_file(app)
    public = make_app(BASE_URL="https://hooks.example.org/")
    with public.app_context():
        url = links.download_url(attachment.uid, attachment.filename)
    assert url.startswith("https://hooks.example.org/attachments/")
    with app.test_request_context(base_url="https://seen.example.net"):
        assert links.download_url(attachment.uid, "x").startswith("https://seen.example.net/")


def test_an_expired_link_answers_403(app, client, make):
    form_uid, token = make.form()
    collect_upload(client, form_uid, token, files=[photo(1)])
    attachment = first_file(app)
    ttl = app.config["ATTACHMENT_URL_TTL"]
    assert ttl == 7 * 24 * 3600
    old = link(app, attachment, at=time.time() - ttl - 5)
    answer = client.get(path_of(old))
    assert answer.status_code == 403 and b"expired" in answer.data
    # Signed just inside the TTL, it still works.
    assert client.get(path_of(link(app, attachment, at=time.time() - ttl + 60))).status_code == 200


@pytest.mark.parametrize("part", ["token", "filename", "other-key"])
def test_an_altered_link_answers_403(app, client, make, make_app, part):
    form_uid, token = make.form()
    collect_upload(client, form_uid, token, files=[photo(1), photo(2)])
    attachment = first_file(app)
    path = path_of(link(app, attachment))
    prefix, signed, name = path.rsplit("/", 2)
    if part == "token":
        path = f"{prefix}/{signed[:-2]}{'AA' if signed[-2:] != 'AA' else 'BB'}/{name}"
    elif part == "filename":
        path = f"{prefix}/{signed}/{photo(2)[0]}"  # another file of the same submission
    else:
        other = make_app(SECRET_KEY="another-secret-key-0123456789")
        with other.app_context():
            path = path_of(links.download_url(attachment.uid, attachment.filename))
    assert client.get(path).status_code == 403


def test_a_deleted_file_answers_404_and_deleting_a_form_deletes_its_files(app, client, make):
    form_uid, token = make.form()
    collect_upload(client, form_uid, token, files=[photo(1), photo(2, size=600_000)])
    path = path_of(link(app, first_file(app)))
    other_uid, other_token = make.form(name="Other")
    collect_upload(client, other_uid, other_token, files=[photo(3)])
    before = row_counts(app)
    with app.app_context():
        db.session.delete(db.session.scalar(select(Form).where(Form.uid == form_uid)))
        db.session.commit()
    assert client.get(path).status_code == 404
    # The other form's submission and file are untouched; nothing of the first is left.
    assert row_counts(app) == (1, 1, 1, 0) and before[:3] == (2, 3, 1 + 3 + 1)


def test_deleting_a_version_deletes_its_files(app, client, make):
    form_uid, token = make.form()
    collect_upload(client, form_uid, token, files=[photo(1)])
    with app.app_context():
        db.session.delete(db.session.scalar(select(Submission)))
        db.session.commit()
    assert row_counts(app) == (0, 0, 0, 0)


def test_a_9_mb_file_is_streamed_with_bounded_memory(app, client, make):
    form_uid, token = make.form()
    size = 9 * 1024 * 1024
    big = bytes(range(256)) * (size // 256)
    parts = [instance_part(), file_part("clip.mp4", big, "video/mp4")]
    assert post_parts(client, form_uid, token, parts).status_code == 201
    del parts
    path = path_of(link(app, first_file(app)))
    reader = app.test_client()
    tracemalloc.start()
    try:
        answer = reader.get(path, buffered=False)
        received, total = 0, 0
        for chunk in answer.response:
            received += 1
            total += len(chunk)
        answer.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size and received == 36  # 256 KB at a time
    assert peak < size / 8, f"peak {peak} bytes while streaming {size}"


def test_the_panel_previews_images_inline_for_logged_in_users_only(app, client, make):
    form_uid, token = make.form()
    collect_upload(
        client, form_uid, token, files=[photo(1), ("notes.svg", b"<svg/>", "image/svg+xml")]
    )
    with app.app_context():
        submission_id = db.session.scalar(select(func.min(Submission.id)))
        files = db.session.scalars(select(Attachment).order_by(Attachment.id)).all()
        page_files = [(f.uid, f.filename) for f in files]
    url = f"/forms/{form_uid}/submissions/{submission_id}/files/{page_files[0][0]}"
    assert client.get(url).status_code == 302  # to the login page
    make.user("viewer@example.org", role="viewer")
    browser = logged_in(app, "viewer@example.org")
    image = browser.get(url)
    assert image.status_code == 200 and image.data == photo(1)[1]
    assert image.headers["Content-Disposition"].startswith("inline")
    svg = browser.get(url.replace(page_files[0][0], page_files[1][0]))
    assert svg.headers["Content-Disposition"].startswith("attachment")  # never inline
    page = browser.get(f"/forms/{form_uid}/submissions/{submission_id}").text
    assert f'<img src="{url}"' in page and "notes.svg" in page
    # A file of another form's submission is not found through this one.
    other_uid, _ = make.form(name="Other")
    assert browser.get(url.replace(form_uid, other_uid)).status_code == 404


def test_the_api_lists_files_with_links(app, client, make):
    form_uid, token = make.form()
    collect_upload(client, form_uid, token, files=[photo(1), photo(2)])
    make.user("admin@example.org", role="admin")
    with app.app_context():
        from webapp.models import ApiToken, User

        _, api_token = ApiToken.issue(User.by_email("admin@example.org"), "test")
        db.session.commit()
    headers = {"Authorization": f"Token {api_token}"}
    listed = client.get(f"/api/v1/forms/{form_uid}/submissions", headers=headers).json
    (entry,) = listed["results"]
    files = entry["attachments"]
    assert [(f["filename"], f["mimetype"], f["size"]) for f in files] == [
        (name, kind, len(data)) for name, data, kind in (photo(1), photo(2))
    ]
    detail = client.get(f"/api/v1/forms/{form_uid}/submissions/{entry['id']}", headers=headers)
    assert detail.json["versions"][0]["attachments"][1]["filename"] == photo(2)[0]
    # The link works for anyone holding it, on the request's root (no BASE_URL here).
    url = files[0]["download_url"]
    assert url.startswith("http://localhost/attachments/")
    assert app.test_client().get(path_of(url)).data == photo(1)[1]


@pytest.mark.parametrize(("raw", "expected"), [("86400", 86400), ("30", None), ("week", None)])
def test_attachment_url_ttl_is_parsed_strictly(tmp_path, raw, expected):
    from webapp.config import ConfigError, load_config

    env = {"ATTACHMENT_URL_TTL": raw, "SECRET_KEY": "x" * 32}
    if expected is None:
        with pytest.raises(ConfigError, match="ATTACHMENT_URL_TTL"):
            load_config(env, str(tmp_path))
    else:
        assert load_config(env, str(tmp_path))["ATTACHMENT_URL_TTL"] == expected


def test_the_panel_preview_of_a_json_hook_shows_the_attachments(app, client, make):
    from webapp.admin.previews import build_for
    from webapp.models import Hook

    form_uid, token = make.form()
    hook_uid = make.hook(form_uid)
    collect_upload(client, form_uid, token, files=[photo(1)])
    with app.app_context():
        hook = db.session.scalar(select(Hook).where(Hook.uid == hook_uid))
        submission = db.session.scalar(select(Submission))
        with app.test_request_context(base_url="https://panel.example.org"):
            body, _ = build_for(hook, hook.form, submission)
    import json

    (entry,) = json.loads(body)["_attachments"]
    assert entry["filename"] == photo(1)[0]
    assert entry["download_url"].startswith("https://panel.example.org/attachments/")
