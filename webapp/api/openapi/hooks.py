"""Hooks (REST services) in the OpenAPI document: list, one hook, retry, rotate-secret."""

from __future__ import annotations

from webapp.api.openapi.parts import (
    DATE,
    FORM,
    HOOK,
    NO_CONTENT,
    PAGE_PARAMS,
    URI,
    Schema,
    body,
    json_answer,
    op,
    page,
    path_params,
    ref,
    string,
)


def paths() -> dict[str, Schema]:
    hook = json_answer(ref("Hook"), "The hook.")
    return {
        FORM + "/hooks": {
            "parameters": path_params("form_uid"),
            "get": op(
                "List the form's hooks (REST services)",
                {"200": json_answer(page("Hook"), "A page of hooks.")},
                parameters=PAGE_PARAMS,
            ),
            "post": op(
                "Create a hook",
                {"201": json_answer(ref("Hook"), "The new hook.")},
                write=True,
                requestBody=body("HookInput"),
            ),
        },
        HOOK: {
            "parameters": path_params("form_uid", "hook_uid"),
            "get": op("Get a hook", {"200": hook}),
            "patch": op(
                "Change some fields of a hook (enabling it sends what it parked)",
                {"200": hook},
                write=True,
                requestBody=body("HookInput"),
            ),
            "delete": op("Delete a hook and its logs", NO_CONTENT, write=True),
        },
        HOOK + "/retry": {
            "parameters": path_params("form_uid", "hook_uid"),
            "post": op(
                "Retry every failed log of the hook",
                {"200": json_answer(ref("RetryAll"), "How many logs were queued.")},
                write=True,
            ),
        },
        HOOK + "/rotate-secret": {
            "parameters": path_params("form_uid", "hook_uid"),
            "post": op(
                "Replace the hook's signing secret; for 24 hours every send is signed with "
                "the new and the old one (docs/signatures.md)",
                {"200": json_answer(ref("Hook"), "The hook, with its new signing_secret.")},
                write=True,
            ),
        },
    }


def schemas() -> dict[str, Schema]:
    headers = {"type": "object", "additionalProperties": {"type": "string"}}
    return {
        "HookSettings": {
            "type": "object",
            "properties": {
                "username": string(),
                "custom_headers": {**headers, "description": "Values are masked."},
            },
        },
        "HookSettingsInput": {
            "type": "object",
            "properties": {
                "username": string(),
                "password": string(
                    writeOnly=True, description="Never returned; empty or absent keeps it."
                ),
                "custom_headers": {
                    **headers,
                    "description": "Replaces all headers; a masked value sent back keeps it.",
                },
            },
        },
        "Hook": {"type": "object", "properties": _hook_properties(output=True)},
        "HookInput": {
            "type": "object",
            "required": ["name", "endpoint"],
            "description": "On PATCH every field is optional.",
            "properties": _hook_properties(output=False),
        },
        "RetryAll": {
            "type": "object",
            "properties": {"detail": string(), "count": {"type": "integer"}},
        },
    }


def _hook_properties(*, output: bool) -> dict[str, Schema]:
    properties: dict[str, Schema] = {
        "name": string(maxLength=255),
        "endpoint": string(format="uri"),
        "active": {"type": "boolean"},
        "export_type": string(enum=["json", "xml"]),
        "auth_level": string(enum=["no_auth", "basic_auth"]),
        "settings": ref("HookSettings" if output else "HookSettingsInput"),
        "subset_fields": {"type": "array", "items": string()},
        "payload_template": string(nullable=True, description="JSON only; %SUBMISSION%."),
        "send_edits": {
            "type": "boolean",
            "description": "Send edits (new versions) too; default false.",
        },
        "email_notification": {"type": "boolean"},
        "notification_emails": {"type": "array", "items": string(format="email")},
    }
    if output:
        count = {"type": "integer", "readOnly": True}
        properties = {
            "uid": string(readOnly=True),
            "url": URI,
            "logs_url": URI,
            **properties,
            "success_count": count,
            "failed_count": count,
            "pending_count": count,
            "date_created": DATE,
            "date_modified": DATE,
            "signing_secret": string(
                readOnly=True,
                description="whsec_...: the key of the webhook-signature header "
                "(Standard Webhooks, docs/signatures.md). Editors and admins only: "
                "absent for viewers. Changed by rotate-secret only.",
            ),
        }
    return properties
