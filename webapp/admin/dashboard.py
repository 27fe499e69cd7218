"""The dashboard: the first page after logging in."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import DeliveryLog, Form

bp = Blueprint("dashboard", __name__)


@bp.get("/")
@login_required
def index():
    counts = dict(
        db.session.execute(
            select(DeliveryLog.status, func.count()).group_by(DeliveryLog.status)
        ).all()
    )
    forms = db.session.scalar(select(func.count()).select_from(Form))
    return render_template("dashboard/index.html", counts=counts, forms=forms)
