"""The Procfile, read with honcho's parser, for the tools that start its processes.

`make run` (scripts/run.py, through honcho), the end-to-end tests and
`make bench` start the processes from the Procfile's own lines, so what is
run, tested and measured is what is deployed. `Procfile.one-dyno`, the
alternative that runs everything in one `web` process (onedyno.py), is read
the same way (`path=ONE_DYNO`). A command runs as honcho and
the platforms run it: through the shell (`$PORT`, `${WEB_CONCURRENCY:-2}`),
in its own session, with this virtualenv's `bin/` first on PATH.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from honcho.environ import parse_procfile
from honcho.process import Popen

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
ONE_DYNO = ROOT / "Procfile.one-dyno"
BIN = Path(sys.executable).parent
RELEASE = "release"  # the platform's one-off step before a deploy (migrations)
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")


def processes(path: Path = PROCFILE) -> dict[str, str]:
    """Every line of the Procfile at `path`: process name -> command, in file order."""
    return dict(parse_procfile(path.read_text()).processes)


def process_line(name: str, path: Path = PROCFILE) -> str:
    try:
        return processes(path)[name]
    except KeyError:
        raise LookupError(f"no {name!r} process in {path}") from None


def process_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with this virtualenv's bin/ first on PATH (`gunicorn`, `python`, `flask`)."""
    return {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', os.defpath)}"}


def start(
    name: str, env: Mapping[str, str], path: Path = PROCFILE, **popen_args
) -> subprocess.Popen:
    """Start the `name` process of the Procfile at `path` as honcho does (shell, own session)."""
    return Popen(process_line(name, path), env=process_env(env), cwd=ROOT, **popen_args)


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
    """The Procfile's `web` command as argv, bound to host:port, gunicorn taken from this venv.

    For `make bench`, which swaps the WSGI application (`app`, its bare
    baseline) and so needs the argv, not the shell line.
    """
    argv = expand(
        process_line("web"), {**(env if env is not None else os.environ), "PORT": str(port)}
    )
    if argv[0] != "gunicorn":
        raise ValueError(f"the web process is not gunicorn: {argv[0]!r}")
    argv[0] = str(BIN / "gunicorn")
    bind = argv.index("--bind") + 1
    argv[bind] = f"{host}:{port}"
    if app is not None:
        argv[-1] = app
    return argv
