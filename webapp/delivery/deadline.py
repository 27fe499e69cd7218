"""The deadline of one send: a per-send Exchange, one watchdog thread, bounded DNS.

Sender.post opens an Exchange, makes it current (CURRENT, a context variable,
so threads sharing a Sender never see each other's) and registers it with
WATCHDOG. Every socket the exchange opens or reuses is registered with it;
at the deadline the watchdog shuts them down, which wakes any blocking
connect, send or recv at once, so ``timeout`` bounds the whole exchange.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar

from webapp.delivery.addresses import IPNetwork, ip_literal
from webapp.delivery.results import DeliveryError


class Exchange:
    """The state of one Sender.post call: its deadline and the sockets it uses.

    The watchdog (one thread per process, WATCHDOG) calls fire() at the deadline:
    every socket registered so far is shut down, which wakes any blocking connect, send or
    recv at once. Sockets are registered as duplicated descriptors owned by the
    exchange, so a shutdown can never hit a descriptor reused by someone else,
    and a TLS wrap of the original socket does not hide it.
    """

    def __init__(self, timeout: float, allowed: tuple[IPNetwork, ...]) -> None:
        self.timeout = timeout
        self.allowed = allowed
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.target = ""
        self.fired = False
        self._done = False
        self._watched: list[socket.socket] = []
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.fired or time.monotonic() >= self.deadline

    def timeout_error(self) -> DeliveryError:
        return DeliveryError(
            f"Timed out after {self.timeout:g} s waiting for {self.target} to answer.",
            duration=self.elapsed(),
        )

    def watch(self, sock: socket.socket) -> None:
        try:
            dup = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except (OSError, ValueError):
            return
        with self._lock:
            if self._done:
                dup.close()
                return
            self._watched.append(dup)
            if self.fired:
                _shutdown(dup)

    def fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            for dup in self._watched:
                _shutdown(dup)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            watched, self._watched = self._watched, []
        for dup in watched:
            dup.close()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed or never connected
        sock.shutdown(socket.SHUT_RDWR)


CURRENT: ContextVar[Exchange | None] = ContextVar("formhooks_exchange", default=None)


class _Watchdog:
    """One thread that fires every exchange still running at its deadline.

    A timer thread per post cost more than a fast send itself. Exchanges are
    kept in deadline order per timeout (all of a Sender's have the same), so
    the thread only ever looks at the head of each queue; a finished exchange
    is forgotten at once, and its queue entry is dropped when it comes up.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queues: dict[float, deque[tuple[float, int]]] = {}
        self._live: dict[int, Exchange] = {}
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def watch(self, exchange: Exchange) -> int:
        key = next(self._keys)
        with self._cond:
            if self._thread is None or self._pid != os.getpid():  # first use, or forked
                self._queues, self._live = {}, {}
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="formhooks-watchdog", daemon=True
                )
                self._thread.start()
            queue = self._queues.setdefault(exchange.timeout, deque())
            queue.append((exchange.deadline, key))
            self._live[key] = exchange
            if len(queue) == 1:
                self._cond.notify()
        return key

    def forget(self, key: int) -> None:
        with self._cond:
            self._live.pop(key, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                due: list[Exchange] = []
                wake = None
                for queue in self._queues.values():
                    while queue:
                        deadline, key = queue[0]
                        if key not in self._live:
                            queue.popleft()
                        elif deadline <= now:
                            queue.popleft()
                            due.append(self._live.pop(key))
                        else:
                            wake = deadline if wake is None else min(wake, deadline)
                            break
                for exchange in due:
                    exchange.fire()
                self._cond.wait(None if wake is None else max(0.0, wake - time.monotonic()))


WATCHDOG = _Watchdog()


def resolve(host: str, port: int, exchange: Exchange) -> list[tuple]:
    """getaddrinfo, bounded by the exchange deadline (one lookup per call)."""

    def lookup() -> list[tuple]:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)

    try:
        infos = lookup() if ip_literal(host) is not None else _bounded(lookup, exchange)
    except (OSError, UnicodeError) as e:  # gaierror is an OSError
        reason = getattr(e, "strerror", None) or str(e)
        raise DeliveryError(f"Could not resolve host {host}: {reason}.") from None
    if not infos:
        raise DeliveryError(f"Could not resolve host {host}: no address found.")
    return infos


def _bounded(lookup: Callable[[], list[tuple]], exchange: Exchange) -> list[tuple]:
    # getaddrinfo cannot be interrupted; a helper thread lets the deadline win.
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["infos"] = lookup()
        except BaseException as e:  # handed to the waiting thread
            box["error"] = e

    thread = threading.Thread(target=run, name="formhooks-dns", daemon=True)
    thread.start()
    thread.join(exchange.remaining())
    if thread.is_alive():
        raise exchange.timeout_error()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["infos"]  # type: ignore[return-value]
