"""hooks: Standard Webhooks signing secrets (current, previous, rotated_at)

Revision ID: 0009_hook_signing_secrets
Revises: 0008_central_sources
Create Date: 2026-12-10 10:00:00.000000

Every existing hook gets its own random secret (`whsec_` + base64 of 32
bytes), encrypted with the app's key as the app stores its other secrets
(webapp.crypto). `flask db upgrade` runs this inside the app, which holds the
key. Where the key cannot be reached (an offline `--sql` run), the column is
left empty and the app gives each such hook a secret on its first use
(docs/signatures.md).
"""

import base64
import secrets

from alembic import context, op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0009_hook_signing_secrets"
down_revision = "0008_central_sources"
branch_labels = None
depends_on = None

SECRET_BYTES = 32


def upgrade():
    op.add_column("hooks", sa.Column("signing_secret_encrypted", sa.Text(), nullable=True))
    op.add_column(
        "hooks", sa.Column("previous_signing_secret_encrypted", sa.Text(), nullable=True)
    )
    op.add_column(
        "hooks", sa.Column("signing_secret_rotated_at", sa.DateTime(timezone=True), nullable=True)
    )
    box = _secret_box()
    if box is None:
        return
    hooks = sa.table("hooks", sa.column("id", sa.Integer()), sa.column("signing_secret_encrypted"))
    bind = op.get_bind()
    ids = bind.execute(sa.select(hooks.c.id)).scalars().all()
    if ids:
        bind.execute(
            hooks.update()
            .where(hooks.c.id == sa.bindparam("hook_id"))
            .values(signing_secret_encrypted=sa.bindparam("secret")),
            [{"hook_id": hook_id, "secret": box.encrypt(_new_secret())} for hook_id in ids],
        )


def downgrade():
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch copy: with
    # foreign keys on, dropping the old `hooks` would cascade-delete its logs.
    for column in (
        "signing_secret_rotated_at",
        "previous_signing_secret_encrypted",
        "signing_secret_encrypted",
    ):
        op.execute(f"ALTER TABLE hooks DROP COLUMN {column}")


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _secret_box():
    """The app's SecretBox when this runs inside the app and can read the database."""
    if context.is_offline_mode():
        return None
    try:
        from flask import current_app

        return current_app.extensions.get("formhooks.secret_box")
    except RuntimeError:  # outside an app context
        return None
