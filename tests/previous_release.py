"""A database as the previous release left it: its schema's own columns, filled with raw SQL.

The previous release is the last state users could have deployed before
this one: commit 5176181 (2026-11-28), whose CHANGELOG lines are the
"earlier rounds" groups, at migration head `0004_form_and_hour_counts`.
There are no version tags yet; at the next release, tag it and move
REVISION to its head (docs/deploy.md, "Upgrading").

Everything here is frozen as that release wrote it: Fernet tokens made with
ENCRYPTION_KEY, a werkzeug scrypt password hash, SHA-256 token digests,
column names of that schema (users still have `failed_logins` and
`locked_until`; submissions have no versions), timestamps as each database
stored them. The current code is used for nothing but connecting.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

REVISION = "0004_form_and_hour_counts"
ENCRYPTION_KEY = "82kXV13VIHTCiL-3tc3coZ8sdyVPNezL1U6hbOwSTq8="
PASSWORD = "correct horse"
PASSWORD_HASH = (
    "scrypt:32768:8:1$OmghFzIPSYmOzHp6$b18f4ed570edf07c4aba7848fe814eb39761cb304c70ae78a0a92d2c"
    "11e158028310b7518d38a318449efad9adec732517a16134b937e42d006422c00d27231d"
)
API_TOKEN = "fht_api-token-issued-by-the-previous-release"  # its digest below
HOOK_PASSWORD = "pässword-0.4"
HOOK_HEADERS = {"X-Api-Key": "k-secret-123", "X-Tenant": "ngo-ä"}
INGEST_TOKENS = {
    "aHouseholdSurvey000001": "ingest-token-of-the-household-survey",
    "aWaterPoints0000000001": "ingest-token-of-the-water-points",
}
_ENCRYPTED = {
    "password": "gAAAAABrDRI0wmEIMaAmf3j3IqoZ9gmBU0NI6QmIJc9cxZIIGq2s8AfDd9OiSne0ecZ_fBRwlxGac"
    "F5R4Zho0jMWqVNitIB3Fg==",
    "headers": "gAAAAABrDRI0DgBGg1Ov5Y-fTzeIJ9Lth6A5gzh6Jeo1VBeZHSITxlhmFJIr8kTS-9NXawZj1w9-3HU"
    "hLp6B-tKA3b1-VezteR0gGEb8vqtlWW8p2agrvpIKvwuWeTHQ91uwvSDAfDYseh1GsdNYwl2cgGDyyPUL9A==",
    "aHouseholdSurvey000001": "gAAAAABrDRI0sd_f8liCtqYD-OMGfe3QzC22LVlPNr0uNTBKdzMYD6a03mXJXH"
    "V2tAWj2fszG5MVdQ2Yutt-TIS1PVZ91C_u2cJv9SUyW095w0vOjPw0yOXjHpaIg5URjmdhJIARSbOX",
    "aWaterPoints0000000001": "gAAAAABrDRI0x2qsUsRy4DVY0hR_Jl9I2bej_d1P2UOrKInUGU0NjgLjzgSHTp"
    "DxEs1ndlnXj5_A8dHeq54_sXMf-oDl8Kak2u2LntqbBPt8NPOiK_jbNfafSFDwuC_WtokQTq4v1806",
}
_DIGESTS = {
    API_TOKEN: "9cc9a19b7e33e19c44c1addccfc1b613aa63e8d9ba0e8eb611394f3d50e72702",
    "aHouseholdSurvey000001": "33c5026328cea0eefe19a5115548f23f4e4d6693a4aad6c2f25163cdd92f2282",
    "aWaterPoints0000000001": "0ff17e86abe3fb7c14a8c0ca40e1bc1ae25567464ba23d0fc26862ce309340c1",
}
WRAPPER = '{"source": "formhooks", "data": %SUBMISSION%}'
FAR_FUTURE = "2099-01-01 00:00:00"  # a retry still waiting when the upgrade runs

#: What the counters must say after the upgrade: (hook uid) -> status -> logs.
HOOK_COUNTS = {
    "hCrm000000000000000001": {"success": 2, "failed": 1, "pending": 1},
    "hArchive00000000000001": {"success": 1, "failed": 1, "pending": 0},
    "hDashboard000000000001": {"success": 0, "failed": 0, "pending": 1},
}
FORM_SUBMISSIONS = {"aHouseholdSurvey000001": 4, "aWaterPoints0000000001": 1}
#: Logs per UTC hour of creation and status.
HOUR_COUNTS = {
    "2026-11-20 09:00": {"success": 1, "failed": 2},
    "2026-11-20 10:00": {"success": 2},
    "2026-11-21 08:00": {"pending": 2},
}
DUE_LOG = "hlDue00000000000000001"  # pending, due: sent once the new release runs
EDITED = "uuid:s3"  # a submission edited in place, as that release did


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _body(instance_id: str, **fields: Any) -> tuple[bytes, str]:
    data = {**fields, "meta": {"instanceID": instance_id}}
    return _json(data).encode(), _json(data)


def rows(endpoint_url: str) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows, in insertion order; hooks CRM and Dashboard post to `endpoint_url`."""
    t0, t1, t2 = "2026-11-20 09:15:00", "2026-11-20 10:30:00", "2026-11-21 08:05:00"
    users = [
        dict(id=1, email="ada@example.org", role="admin", language="fr", failed_logins=0,
             locked_until=None, last_login=t0),
        # Locked by the per-account lock that release had (gone with its columns).
        dict(id=2, email="alice@example.org", role="editor", language=None, failed_logins=5,
             locked_until=FAR_FUTURE, last_login=None),
    ]  # fmt: skip
    for user in users:
        user.update(password_hash=PASSWORD_HASH, is_active=True, report_opt_in=True, date_joined=t0)
    forms = [
        dict(id=1, uid="aHouseholdSurvey000001", name="Household survey", owner_id=2),
        dict(id=2, uid="aWaterPoints0000000001", name="Water points", owner_id=1),
    ]
    for form in forms:
        form.update(
            ingest_token_hash=_DIGESTS[form["uid"]],
            ingest_token_encrypted=_ENCRYPTED[form["uid"]],
            date_created=t0,
            date_modified=t0,
        )
    hook = dict(
        active=True, export_type="json", auth_level="no_auth", username="",
        password_encrypted=None, custom_headers_encrypted=None, subset_fields="[]",
        payload_template=None, email_notification=True, notification_emails="[]",
        date_created=t0, date_modified=t0,
    )  # fmt: skip
    hooks = [
        {**hook, "id": 1, "uid": "hCrm000000000000000001", "form_id": 1, "name": "CRM",
         "endpoint": endpoint_url, "auth_level": "basic_auth", "username": "crm",
         "password_encrypted": _ENCRYPTED["password"],
         "custom_headers_encrypted": _ENCRYPTED["headers"], "payload_template": WRAPPER,
         "notification_emails": _json(["ops@example.org"])},
        {**hook, "id": 2, "uid": "hArchive00000000000001", "form_id": 1, "name": "Archive",
         "endpoint": "http://127.0.0.1:9/archive", "export_type": "xml", "active": False,
         "subset_fields": _json(["name", "meta"])},
        {**hook, "id": 3, "uid": "hDashboard000000000001", "form_id": 2, "name": "Dashboard",
         "endpoint": endpoint_url},
    ]  # fmt: skip
    submissions = []
    for sid, form_id, instance, created, fields in [
        (1, 1, "uuid:s1", t0, {"name": "Kofi Mensah", "members": 4}),
        (2, 1, "uuid:s2", t0, {"name": "Aïssatou Diallo", "members": 6}),
        (3, 1, EDITED, t1, {"name": "Nadia Haddad", "members": 2}),
        (4, 1, "uuid:s4", t2, {"name": "Amina Yusuf", "members": 3}),
        (5, 2, "uuid:w1", t2, {"pump": "working", "depth_m": 35}),
    ]:
        body, data = _body(instance, **fields)
        submissions.append(
            dict(id=sid, form_id=form_id, instance_id=instance, source_format="json",
                 content_type="application/json", body=body, data=data, created_at=created,
                 updated_at=created, edit_count=0, edited_content_type=None, edited_body=None,
                 edited_data=None)
        )  # fmt: skip
    # uuid:s3 was posted again with another body: that release's edit in place.
    body, data = _body(EDITED, name="Nadia Haddad", members=3)
    submissions[2].update(
        edit_count=1, edited_content_type="application/json", edited_body=body,
        edited_data=data, updated_at="2026-11-20 11:00:00",
    )  # fmt: skip
    log = dict(status_code=None, message="", next_retry_at=None, last_attempt_at=None,
               locked_until=None, reported_at=None, report_claimed_until=None)  # fmt: skip
    logs = [
        {**log, "id": 1, "uid": "hlSuccess0000000000001", "hook_id": 1, "submission_id": 1,
         "status": "success", "tries": 1, "status_code": 200, "message": "answer 1: 200",
         "date_created": t0, "last_attempt_at": t0},
        {**log, "id": 2, "uid": "hlFailedReported000001", "hook_id": 2, "submission_id": 1,
         "status": "failed", "tries": 4, "status_code": 500, "message": "HTTP 500",
         "date_created": t0, "last_attempt_at": t1, "reported_at": t1},
        {**log, "id": 3, "uid": "hlFailedUnreported0001", "hook_id": 1, "submission_id": 2,
         "status": "failed", "tries": 4, "message": "Connection refused",
         "date_created": t0, "last_attempt_at": t1},
        {**log, "id": 4, "uid": "hlSecondTry00000000001", "hook_id": 1, "submission_id": 3,
         "status": "success", "tries": 2, "status_code": 200, "message": "answer 2: 200",
         "date_created": t1, "last_attempt_at": t1},
        {**log, "id": 5, "uid": DUE_LOG, "hook_id": 1, "submission_id": 4,
         "status": "pending", "tries": 1, "status_code": 503, "message": "HTTP 503",
         "date_created": t2, "last_attempt_at": t2, "next_retry_at": t2},
        {**log, "id": 6, "uid": "hlWaiting0000000000001", "hook_id": 3, "submission_id": 5,
         "status": "pending", "tries": 2, "message": "Read timed out",
         "date_created": t2, "last_attempt_at": t2, "next_retry_at": FAR_FUTURE},
        {**log, "id": 7, "uid": "hlArchived000000000001", "hook_id": 2, "submission_id": 3,
         "status": "success", "tries": 1, "status_code": 201, "message": "answer 1: 201",
         "date_created": t1, "last_attempt_at": t1},
    ]  # fmt: skip
    for entry in logs:
        entry["date_modified"] = entry["last_attempt_at"]
    attempts = []
    outcomes = {
        1: [("success", 200)],
        2: [("failure", 500)] * 4,
        3: [("error", None)] * 4,
        4: [("failure", 502), ("success", 200)],
        5: [("failure", 503)],
        6: [("error", None)] * 2,
        7: [("success", 201)],
    }
    for log_id, tries in outcomes.items():
        for number, (outcome, status_code) in enumerate(tries, start=1):
            attempts.append(
                dict(log_id=log_id, number=number, started_at=logs[log_id - 1]["date_created"],
                     duration_ms=120 * number, status_code=status_code, outcome=outcome,
                     message=f"attempt {number}")
            )  # fmt: skip
    tokens = [
        dict(id=1, user_id=1, name="sync", token_hash=_DIGESTS[API_TOKEN], prefix=API_TOKEN[:12],
             created_at=t0, last_used_at=None)
    ]  # fmt: skip
    return {
        "users": users,
        "api_tokens": tokens,
        "forms": forms,
        "hooks": hooks,
        "submissions": submissions,
        "delivery_logs": logs,
        "delivery_attempts": attempts,
    }


def fill(connection: Connection, endpoint_url: str) -> None:
    """Insert `rows()` as that release's SQL would, in `connection`'s transaction."""
    postgresql = connection.dialect.name == "postgresql"
    for table, entries in rows(endpoint_url).items():
        for entry in entries:
            values = {name: _stored(name, value, postgresql) for name, value in entry.items()}
            columns = ", ".join(values)
            placeholders = ", ".join(f":{name}" for name in values)
            connection.execute(
                text(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"), values
            )
    if postgresql:  # rows were given their ids: move the sequences past them
        for table in rows(endpoint_url):
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT max(id) FROM {table}))"
                )
            )


_TIMESTAMPS = {
    "locked_until", "last_login", "date_joined", "created_at", "last_used_at", "date_created",
    "date_modified", "updated_at", "next_retry_at", "last_attempt_at", "reported_at",
    "report_claimed_until", "started_at",
}  # fmt: skip


def _stored(name: str, value: Any, postgresql: bool) -> Any:
    """A value as the database stored it: UTC timestamps naive on SQLite, with +00 on PostgreSQL."""
    if name in _TIMESTAMPS and value is not None:
        return f"{value}+00" if postgresql else f"{value}.000000"
    return value
