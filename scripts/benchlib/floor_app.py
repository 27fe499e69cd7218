"""A reference for the ingest figure: a bare Flask view plus one durable INSERT.

It stores the raw body with one autocommit INSERT into a one-index table
(`floor_probe`, made by scripts/bench.py) on a connection per thread, and
does nothing else: no token, no parsing, no hooks, no Redis. What it reaches
beside the bare view shows what a durable write per request costs on this
machine, whatever the app does around it.
"""

import os
import threading

import psycopg
from flask import Flask, request

_local = threading.local()


def create_app() -> Flask:
    app = Flask(__name__)
    url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")

    @app.post("/api/v1/forms/<form_uid>/submissions")
    def receive(form_uid: str):
        conn = getattr(_local, "conn", None)
        if conn is None:
            conn = _local.conn = psycopg.connect(url, autocommit=True)
        conn.execute("INSERT INTO floor_probe (body) VALUES (%s)", (request.get_data(),))
        return {"created": True}, 201

    @app.get("/")
    def ready():
        return "ok"

    return app
