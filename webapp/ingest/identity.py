"""What a submission says about the instance it replaces: the signals of an edit.

ODK Collect, Enketo and ODK Central make an edit a new instance, with a new
`meta/instanceID` and `meta/deprecatedID` naming the instance it replaces;
Enketo also sends that id as the `X-OpenRosa-Deprecated-Id` header (the only
place it can be read when the instance is encrypted); KoboToolbox keeps the
first version's id in `meta/rootUuid` (with the `uuid:` prefix in its JSON,
without it in some older records). Pure functions, like
webapp.ingest.parsing's `instance_id_of`, beside which they are called.
The README ("Edits") says what counts as an edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webapp.ingest.parsing import MAX_INSTANCE_ID, IngestError

DEPRECATED_HEADER = "X-OpenRosa-Deprecated-Id"
UUID_PREFIX = "uuid:"
# What browsers send for a header set to an undefined JavaScript value.
_ABSENT = frozenset({"", "undefined", "null"})


@dataclass(frozen=True)
class EditRefs:
    """The instance ids a submission names as earlier versions of itself.

    `deprecated_id` is meta/deprecatedID, else the header; `root_id` is
    meta/rootUuid with the `uuid:` prefix, unless it is the submission's own
    id (a KoboToolbox first version names itself).
    """

    deprecated_id: str | None = None
    header_id: str | None = None
    root_id: str | None = None

    def __bool__(self) -> bool:
        return bool(self.deprecated_id or self.root_id)

    def candidates(self) -> list[str]:
        """Ids to look up, the strongest signal first (rootUuid with and without prefix)."""
        found: list[str] = []
        roots = [self.root_id, self.root_id.removeprefix(UUID_PREFIX)] if self.root_id else []
        for value in (self.deprecated_id, self.header_id, *roots):
            if value and value not in found:
                found.append(value)
        return found

    def placeholders(self) -> list[str]:
        """The named ids to keep until they arrive: the replaced one, then the root."""
        return [v for v in dict.fromkeys((self.deprecated_id, self.root_id)) if v]


def edit_refs_of(data: Any, instance_id: str, header: str | None) -> EditRefs:
    """The edit signals of a parsed submission whose instance id is `instance_id`.

    Raises IngestError (400) for a value that is not a short printable string.
    """
    body_id = _meta(data, "deprecatedID")
    header_id = _clean(header, DEPRECATED_HEADER) if header is not None else None
    if header_id in _ABSENT:
        header_id = None
    root = _meta(data, "rootUuid")
    if root is not None and not root.startswith(UUID_PREFIX):
        root = UUID_PREFIX + root
    own = {instance_id, instance_id.removeprefix(UUID_PREFIX)}
    return EditRefs(
        deprecated_id=_unless_own(body_id or header_id, own),
        header_id=_unless_own(header_id, own),
        root_id=_unless_own(root, own | {UUID_PREFIX + instance_id}),
    )


def _meta(data: Any, name: str) -> str | None:
    """meta/<name> as a flat key (JSON, and XML as converted) or nested meta.<name>."""
    if not isinstance(data, dict):
        return None
    value = data.get(f"meta/{name}")
    if value is None and isinstance(data.get("meta"), dict):
        value = data["meta"].get(name)
    if value is None or value == "":
        return None
    return _clean(value, f"meta/{name}") or None


def _clean(value: Any, where: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise IngestError(400, f"The {where} must be a string.")
    value = str(value).strip()
    if len(value) > MAX_INSTANCE_ID or not value.isprintable():
        raise IngestError(
            400, f"The {where} must be at most {MAX_INSTANCE_ID} printable characters."
        )
    return value


def _unless_own(value: str | None, own: set[str]) -> str | None:
    return None if value is None or value in own else value
