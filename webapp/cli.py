"""Command line: `flask --app webapp users|forms|secrets ...` (README "A quick tour").

`reports` is added by webapp/reports, `scheduler` by webapp/tasks.
"""

from __future__ import annotations

import json
import sys

import click
from flask import Flask, current_app, url_for
from flask.cli import AppGroup

from webapp.extensions import db
from webapp.models import ROLES, ApiToken, Form, User

users_cli = AppGroup("users", help="Manage staff accounts.")
forms_cli = AppGroup("forms", help="Manage forms.")
secrets_cli = AppGroup("secrets", help="Manage the encryption of stored secrets.")


def init_app(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(forms_cli)
    app.cli.add_command(secrets_cli)


def _user_or_exit(email: str) -> User:
    user = User.by_email(email)
    if user is None:
        click.echo(f"Error: no user with email {email!r}.", err=True)
        sys.exit(1)
    return user


@users_cli.command("create")
@click.argument("email")
@click.option("--password", required=True, help="The user's password (at least 8 characters).")
@click.option("--role", type=click.Choice(ROLES), default="editor", show_default=True)
def create_user(email: str, password: str, role: str) -> None:
    """Create a staff account."""
    email = User.normalize_email(email)
    if "@" not in email:
        raise click.BadParameter(f"{email!r} is not an email address", param_hint="EMAIL")
    if len(password) < 8:
        raise click.BadParameter("must be at least 8 characters", param_hint="--password")
    if User.by_email(email) is not None:
        click.echo(f"Error: a user with email {email!r} already exists.", err=True)
        sys.exit(1)
    user = User(email=email, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"Created {role} {email}.")


@users_cli.command("token")
@click.argument("email")
@click.option("--name", default="cli", help="A label for the token.")
def create_token(email: str, name: str) -> None:
    """Print a new API token for EMAIL (shown once)."""
    user = _user_or_exit(email)
    _, plaintext = ApiToken.issue(user, name=name)
    db.session.commit()
    click.echo(plaintext)


def form_as_json(form: Form) -> dict:
    base = current_app.config["BASE_URL"] or f"http://127.0.0.1:{current_app.config['PORT']}"
    with current_app.test_request_context(base_url=base):
        ingest_url = url_for("ingest.receive", form_uid=form.uid, _external=True)
    return {
        "uid": form.uid,
        "name": form.name,
        "ingest_url": ingest_url,
        "ingest_token": form.ingest_token,
    }


@forms_cli.command("create")
@click.argument("name")
@click.option("--owner", required=True, help="Email of the owning user.")
def create_form(name: str, owner: str) -> None:
    """Create a form and print it as JSON."""
    user = _user_or_exit(owner)
    if not name.strip():
        raise click.BadParameter("must not be empty", param_hint="NAME")
    form = Form(name=name.strip(), owner=user)
    db.session.add(form)
    db.session.commit()
    click.echo(json.dumps(form_as_json(form)))


@secrets_cli.command("rotate")
def rotate_secrets() -> None:
    """Re-encrypt every stored secret with the first key of ENCRYPTION_KEY.

    Put the new key first and keep the old ones after it
    (ENCRYPTION_KEY=new,old), run this, then drop the old keys. All or
    nothing: if one secret cannot be decrypted, nothing is changed.
    """
    from sqlalchemy import select

    from webapp.models import Hook, Source
    from webapp.models.base import secret_box

    box = secret_box()
    count = 0
    try:
        for form in db.session.scalars(select(Form)):
            form.ingest_token_encrypted = box.rotate(form.ingest_token_encrypted)
            count += 1
        for hook in db.session.scalars(select(Hook)):
            for column in (
                "password_encrypted",
                "custom_headers_encrypted",
                "signing_secret_encrypted",
                "previous_signing_secret_encrypted",
            ):
                value = getattr(hook, column)
                if value:
                    setattr(hook, column, box.rotate(value))
                    count += 1
        for source in db.session.scalars(select(Source)):
            for column in ("password_encrypted", "session_token_encrypted"):
                value = getattr(source, column)
                if value:
                    setattr(source, column, box.rotate(value))
                    count += 1
    except ValueError as exc:
        db.session.rollback()
        click.echo(f"Error: {exc}. Nothing was changed.", err=True)
        sys.exit(1)
    db.session.commit()
    click.echo(f"Re-encrypted {count} secrets with the first ENCRYPTION_KEY.")
