"""Command line: `flask --app webapp users|forms|reports|scheduler|secrets ...` (SPEC §3)."""

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


def init_app(app: Flask) -> None:
    from webapp.delivery.scheduling import scheduler_cli

    app.cli.add_command(users_cli)
    app.cli.add_command(forms_cli)
    app.cli.add_command(scheduler_cli)


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
