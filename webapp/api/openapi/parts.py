"""The pieces every area of the OpenAPI document is built from.

Plain data and small builders only: nothing of the app's blueprints is
imported here, so the areas' modules import this without a cycle.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    """A reference to the schema `name` of components/schemas."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_answer(schema: Schema, description: str) -> Schema:
    """A response whose JSON body follows `schema`."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def page(item: str) -> Schema:
    """A paginated list of the schema `item` (webapp/api/pagination.py)."""
    return {
        "type": "object",
        "required": ["count", "next", "previous", "results"],
        "properties": {
            "count": {"type": "integer"},
            "next": {"type": "string", "format": "uri", "nullable": True},
            "previous": {"type": "string", "format": "uri", "nullable": True},
            "results": {"type": "array", "items": ref(item)},
        },
    }


def path_param(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def path_params(*names: str) -> list[Schema]:
    return [path_param(name) for name in names]


def query(name: str, description: str = "", **schema: Any) -> Schema:
    """A query parameter; `schema` holds its type and bounds."""
    described = {"description": description} if description else {}
    return {"name": name, "in": "query", **described, "schema": schema}


PAGE_PARAMS = [
    query("limit", "Page size (default 100, at most 1000).", type="integer", minimum=1),
    query("start", "Offset of the first result.", type="integer", minimum=0),
]
ERRORS = {
    "400": {"$ref": "#/components/responses/Invalid"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
    "404": {"$ref": "#/components/responses/NotFound"},
}
READ_ERRORS = {k: v for k, v in ERRORS.items() if k in ("401", "404")}


def op(summary: str, responses: dict[str, Schema], *, write: bool = False, **extra: Any) -> Schema:
    """An operation taking an API token: its error answers are a write's or a read's."""
    errors = ERRORS if write else READ_ERRORS
    return {"summary": summary, "responses": {**responses, **errors}, **extra}


def body(name: str, *, required: bool = True) -> Schema:
    """A JSON request body following the schema `name`."""
    return {"required": required, "content": {"application/json": {"schema": ref(name)}}}


def string(**extra: Any) -> Schema:
    return {"type": "string", **extra}


NO_CONTENT = {"204": {"description": "Deleted."}}
FORM = "/api/v1/forms/{form_uid}"
HOOK = FORM + "/hooks/{hook_uid}"
LOG = HOOK + "/logs/{log_uid}"
DATE = string(format="date-time")
NULLABLE_DATE = string(format="date-time", nullable=True)
URI = string(format="uri", readOnly=True)
