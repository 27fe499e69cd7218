"""A fast HTTP/1.1 endpoint for benchmarks: asyncio, keep-alive.

    python scripts/benchlib/fast_endpoint.py PORT [--delay S] [--status CODE]

Answers every POST with CODE (default 200) after S seconds (default 0) and
notes when it arrived; GET /times answers those times (Unix seconds, JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

TIMES: list[float] = []


def make_handler(delay: float, status: int):
    status_line = b"HTTP/1.1 %d X\r\n" % status

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                if head.startswith(b"GET /times"):
                    line, body = b"HTTP/1.1 200 OK\r\n", json.dumps(TIMES).encode()
                else:
                    TIMES.append(time.time())
                    line, body = status_line, b"ok"
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
    args = parser.parse_args()
    server = await asyncio.start_server(
        make_handler(args.delay, args.status), "127.0.0.1", args.port, backlog=4096
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
