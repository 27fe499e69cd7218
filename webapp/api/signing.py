"""A hook's signing secret: `POST .../hooks/<hook_uid>/rotate-secret` (docs/signatures.md).

The secret itself is the `signing_secret` field of a hook (serializers), shown
to editors and admins only; viewers cannot POST here (common._authenticate).
"""

from __future__ import annotations

from webapp.api.common import bp, get_hook
from webapp.api.serializers import hook_json
from webapp.extensions import db


@bp.post("/forms/<form_uid>/hooks/<hook_uid>/rotate-secret")
def hook_rotate_secret(form_uid: str, hook_uid: str):
    """A new signing secret; the old one keeps signing for 24 hours. Answers the hook."""
    hook = get_hook(form_uid, hook_uid)
    hook.rotate_signing_secret()
    db.session.commit()
    return hook_json(hook)
