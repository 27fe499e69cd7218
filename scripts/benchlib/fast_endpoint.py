"""A fast HTTP/1.1 endpoint for benchmarks: asyncio, keep-alive.

    python scripts/benchlib/fast_endpoint.py PORT [--delay S] [--status CODE]
        [--fail-rate P] [--seed N]

Answers every POST with CODE (default 200) after S seconds (default 0) and
notes when it arrived; GET /times answers those times (Unix seconds, JSON).

With --fail-rate P, each POST is answered 500 instead, at random, with
probability P. GET /received answers what the POSTs carried in their
X-Formhooks-Delivery header: {"ok": [ids answered 2xx, in order, repeats
kept], "failed": number answered 500 by --fail-rate}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

TIMES: list[float] = []
RECEIVED: list[str] = []
FAILED = [0]


def make_handler(delay: float, status: int, fail_rate: float = 0.0, seed: int | None = None):
    status_line = b"HTTP/1.1 %d X\r\n" % status
    fail_line = b"HTTP/1.1 500 X\r\n"
    chance = random.Random(seed)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                delivery = ""
                for line in head.split(b"\r\n"):
                    lower = line.lower()
                    if lower.startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                    elif lower.startswith(b"x-formhooks-delivery:"):
                        delivery = line.split(b":", 1)[1].strip().decode("latin-1")
                if length:
                    await reader.readexactly(length)
                if head.startswith(b"GET /times"):
                    line, body = b"HTTP/1.1 200 OK\r\n", json.dumps(TIMES).encode()
                elif head.startswith(b"GET /received"):
                    line = b"HTTP/1.1 200 OK\r\n"
                    body = json.dumps({"ok": RECEIVED, "failed": FAILED[0]}).encode()
                else:
                    TIMES.append(time.time())
                    if fail_rate and chance.random() < fail_rate:
                        line, body = fail_line, b"random failure"
                        FAILED[0] += 1
                    else:
                        line, body = status_line, b"ok"
                        if 200 <= status < 300:
                            RECEIVED.append(delivery)
                    if delay:
                        await asyncio.sleep(delay)
                writer.write(line + b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    server = await asyncio.start_server(
        make_handler(args.delay, args.status, args.fail_rate, args.seed),
        "127.0.0.1",
        args.port,
        backlog=4096,
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
