"""The Procfile's commands, for the tools that start the processes themselves.

`make run`, the end-to-end tests and `make bench` start gunicorn exactly as
the Procfile's `web` line says (workers, threads, options), so what is
tested and measured is what is deployed.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")


def process_line(name: str) -> str:
    for line in PROCFILE.read_text().splitlines():
        key, sep, command = line.partition(":")
        if sep and key.strip() == name:
            return command.strip()
    raise LookupError(f"no {name!r} process in {PROCFILE}")


def expand(command: str, env: Mapping[str, str]) -> list[str]:
    """Split a Procfile command as a shell would, expanding $VAR and ${VAR:-default}."""

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(3)
        found = env.get(name, "")
        if found == "" and match.group(2) is not None:
            return match.group(2)
        return found

    return shlex.split(_VARIABLE.sub(value, command))


def web_command(
    port: int | str,
    *,
    env: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    app: str | None = None,
) -> list[str]:
    """The Procfile's `web` command, bound to host:port, gunicorn taken from this venv.

    `app` replaces the WSGI application (the benchmark's bare baseline).
    """
    argv = expand(
        process_line("web"), {**(env if env is not None else os.environ), "PORT": str(port)}
    )
    if argv[0] != "gunicorn":
        raise ValueError(f"the web process is not gunicorn: {argv[0]!r}")
    argv[0] = str(Path(sys.executable).parent / "gunicorn")
    bind = argv.index("--bind") + 1
    argv[bind] = f"{host}:{port}"
    if app is not None:
        argv[-1] = app
    return argv
