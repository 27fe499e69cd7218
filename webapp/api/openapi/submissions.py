"""Stored submissions in the OpenAPI document: their list, one with its versions.

POST on the list's path is the webhook URL, described by ingest.py.
"""

from __future__ import annotations

from webapp.api.openapi.ingest import ingest_operation
from webapp.api.openapi.parts import (
    DATE,
    FORM,
    PAGE_PARAMS,
    Schema,
    json_answer,
    op,
    page,
    path_params,
    query,
    ref,
    string,
)


def paths() -> dict[str, Schema]:
    return {
        FORM + "/submissions": {
            "parameters": path_params("form_uid"),
            "get": op(
                "List stored submissions, newest first (data only up to 64 KB)",
                {"200": json_answer(page("Submission"), "A page of submissions.")},
                parameters=[
                    query(
                        "limit", "Page size (default and at most 100).", type="integer", minimum=1
                    ),
                    PAGE_PARAMS[1],
                ],
            ),
            "post": ingest_operation(),
        },
        FORM + "/submissions/{submission_id}": {
            "parameters": path_params("form_uid", "submission_id"),
            "get": op(
                "Get a submission, with its data in full and each of its versions (edits), "
                "oldest first",
                {"200": json_answer(ref("SubmissionDetail"), "The submission.")},
            ),
        },
    }


def schemas() -> dict[str, Schema]:
    return {
        "Submission": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "url": string(format="uri"),
                "instance_id": string(description="Its current (latest) version's instance id."),
                "source_format": string(enum=["json", "xml"]),
                "content_type": string(),
                "root_instance_id": string(description="Its first version's instance id."),
                "versions": {"type": "integer", "description": "Versions received (edits + 1)."},
                "size": {
                    "type": "integer",
                    "description": "Bytes of its latest version's body as last received.",
                },
                "data": {
                    "type": "object",
                    "nullable": True,
                    "description": "Of its latest version, as last received; null in lists "
                    "when that body is over 64 KB (see data_omitted).",
                },
                "data_omitted": {
                    "type": "boolean",
                    "description": "True when a list left the data out: get `url` for it.",
                },
                "attachments": {
                    "type": "array",
                    "items": ref("Attachment"),
                    "description": "Files of its latest version (docs/attachments.md).",
                },
                "edit_count": {"type": "integer"},
                "date_created": DATE,
                "date_modified": DATE,
            },
        },
        "SubmissionDetail": {
            "type": "object",
            "description": "A Submission's fields, with `versions` listing its versions.",
            "properties": {
                "versions": {"type": "array", "items": ref("SubmissionVersion")},
            },
        },
        "SubmissionVersion": {
            "type": "object",
            "properties": {
                "number": {"type": "integer"},
                "instance_id": string(),
                "deprecated_id": string(nullable=True),
                "source_format": string(enum=["json", "xml"]),
                "content_type": string(),
                "date_created": DATE,
                "date_modified": DATE,
                "edit_count": {"type": "integer"},
                "data": {"type": "object"},
                "attachments": {"type": "array", "items": ref("Attachment")},
            },
        },
        "Attachment": {
            "type": "object",
            "description": "A file posted with a version, as `_attachments` lists it.",
            "properties": {
                "uid": string(),
                "filename": string(description="As the instance names it."),
                "media_file_basename": string(description="The same name (KoboToolbox)."),
                "mimetype": string(),
                "size": {"type": "integer", "description": "Bytes."},
                "download_url": string(
                    format="uri",
                    description="Signed; needs no credential; expires after ATTACHMENT_URL_TTL.",
                ),
            },
        },
    }
