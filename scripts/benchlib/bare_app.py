"""The ingest baseline: a bare Flask view returning 201, served like the real app."""

from flask import Flask


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/api/v1/forms/<form_uid>/submissions")
    def receive(form_uid: str):
        return {"created": True}, 201

    @app.get("/")
    def ready():
        return "ok"

    return app
