"""The panel's HTML forms (Flask-WTF), one class per form.

They check the shape of what was posted (required, lengths, matching
passwords). Hook settings are not checked here: `webapp.hook_settings` holds
those rules for the panel and the API alike, and the hooks views show its
errors next to these fields.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, ValidationError

from webapp.admin.i18n import LANGUAGES

MIN_PASSWORD = 8
#: Blank header rows offered on the hook page, for use without JavaScript.
BLANK_HEADER_ROWS = 3


def _role_choices() -> list[SelectChoice]:
    return [
        SelectChoice("viewer", _l("Viewer: sees everything, changes nothing")),
        SelectChoice("editor", _l("Editor: manages forms, REST services and retries")),
        SelectChoice("admin", _l("Administrator: also manages users")),
    ]


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class LanguageForm(FlaskForm):
    language = HiddenField(validators=[DataRequired()])

    def validate_language(self, field) -> None:
        if field.data not in LANGUAGES:
            raise ValidationError(_l("Unknown language."))


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token (delete, toggle, retry buttons)."""


class FormForm(FlaskForm):
    name = StringField(
        _l("Name"),
        validators=[DataRequired(message=_l("Enter a name.")), Length(max=255)],
        description=_l("As your team calls it, e.g. “Household survey 2025”."),
    )
    owner_id = SelectField(
        _l("Owner"),
        coerce=int,
        description=_l("Receives the failure reports of this form's REST services."),
    )


class HeaderRow(Form):
    """One custom header. A blank value keeps the stored value of `original`."""

    name = StringField(_l("Header name"), validators=[Optional(), Length(max=256)])
    value = StringField(_l("Value"), validators=[Optional()])
    original = HiddenField()


class HookForm(FlaskForm):
    name = StringField(_l("Name"), description=_l("E.g. “CRM” or “Partner dashboard”."))
    endpoint = StringField(
        _l("Endpoint URL"),
        description=_l(
            "The address that receives each new submission, e.g. "
            "https://crm.example.org/api/submissions."
        ),
    )
    active = BooleanField(_l("Enabled"), default=True)
    export_type = RadioField(
        _l("Format"),
        choices=[SelectChoice("json", "JSON"), SelectChoice("xml", "XML")],
        default="json",
    )
    auth_level = RadioField(
        _l("Authentication"),
        choices=[
            SelectChoice("no_auth", _l("None")),
            SelectChoice("basic_auth", _l("Basic (username and password)")),
        ],
        default="no_auth",
    )
    username = StringField(_l("Username"))
    password = PasswordField(_l("Password"))
    custom_headers = FieldList(FormField(HeaderRow), min_entries=0, max_entries=60)
    subset_fields = TextAreaField(
        _l("Send only these fields"),
        description=_l(
            "One field per line. Leave empty to send every field. "
            "“q3” selects q3 in any group; “group1/q3” selects that exact path."
        ),
    )
    payload_template = TextAreaField(
        _l("Custom wrapper (JSON only)"),
        description=_l(
            "Optional. JSON in which %(placeholder)s is replaced by the submission, "
            "e.g. %(example)s.",
            placeholder="%SUBMISSION%",
            example='{"source": "kobo", "data": %SUBMISSION%}',
        ),
    )
    send_edits = BooleanField(_l("Also send edits"), default=False)
    email_notification = BooleanField(_l("Email a report when sending fails"), default=True)
    notification_emails = TextAreaField(
        _l("Also send the reports to"),
        description=_l(
            "Optional: extra email addresses, one per line. The form's owner always gets them."
        ),
    )


class UserCreateForm(FlaskForm):
    email = EmailField(
        _l("Email"),
        validators=[
            DataRequired(message=_l("Enter an email address.")),
            Email(message=_l("Enter a valid email address.")),
            Length(max=254),
        ],
    )
    role = RadioField(_l("Role"), default="editor")
    password = PasswordField(
        _l("Password"),
        validators=[
            DataRequired(message=_l("Enter a password.")),
            Length(min=MIN_PASSWORD, message=_l("At least 8 characters.")),
        ],
        description=_l(
            "At least 8 characters. Give it to the person by a safe channel; "
            "they can change it on their profile page."
        ),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.role.choices = _role_choices()


class UserEditForm(FlaskForm):
    role = RadioField(_l("Role"))
    active = BooleanField(_l("Active (can log in)"))
    new_password = PasswordField(
        _l("New password"),
        validators=[
            Optional(),
            Length(min=MIN_PASSWORD, message=_l("At least 8 characters.")),
        ],
        description=_l("Leave blank to keep the current password."),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.role.choices = _role_choices()


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[DataRequired(message=_l("Enter your current password."))],
    )
    new_password = PasswordField(
        _l("New password"),
        validators=[
            DataRequired(message=_l("Enter a new password.")),
            Length(min=MIN_PASSWORD, message=_l("At least 8 characters.")),
        ],
    )
    confirm = PasswordField(
        _l("New password, again"),
        validators=[EqualTo("new_password", message=_l("The two passwords differ."))],
    )


class PreferencesForm(FlaskForm):
    language = SelectField(
        _l("Language"), choices=[SelectChoice(code, label) for code, label in LANGUAGES.items()]
    )
    report_opt_in = BooleanField(_l("Email me failure reports for my forms"))


class TokenCreateForm(FlaskForm):
    token_name = StringField(
        _l("Token name"),
        validators=[DataRequired(message=_l("Name the token.")), Length(max=100)],
        description=_l("What it is for, e.g. “Reporting script”."),
    )


class TokenRevokeForm(FlaskForm):
    token_id = HiddenField(validators=[DataRequired()])


class BackfillForm(FlaskForm):
    """ "Send existing submissions" (webapp.bulk.ranges checks the dates). Prefix: backfill."""

    since = StringField(
        _l("From"), description=_l("Received on or after this day (UTC). Empty: the first.")
    )
    until = StringField(
        _l("To"), description=_l("Received on or before this day (UTC). Empty: until now.")
    )


class ReplayForm(FlaskForm):
    """ "Send deliveries again" (webapp.bulk.ranges checks the values). Prefix: replay."""

    status = RadioField(
        _l("Which deliveries"),
        choices=[
            SelectChoice("failed", _l("Failed")),
            SelectChoice("success", _l("Delivered")),
            SelectChoice("both", _l("Both")),
        ],
        default="failed",
    )
    since = StringField(
        _l("From"), description=_l("Deliveries made on or after this day (UTC). Empty: the first.")
    )
    until = StringField(
        _l("To"), description=_l("Deliveries made on or before this day (UTC). Empty: until now.")
    )
