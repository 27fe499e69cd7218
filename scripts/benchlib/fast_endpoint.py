"""A fast HTTP/1.1 endpoint for benchmarks: asyncio, keep-alive, answers 200.

    python scripts/benchlib/fast_endpoint.py PORT [DELAY_SECONDS]

Counts the requests it receives; GET /count answers the count.
"""

from __future__ import annotations

import asyncio
import sys

COUNT = 0


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global COUNT
    delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            if head.startswith(b"GET /count"):
                body = str(COUNT).encode()
            else:
                COUNT += 1
                body = b"ok"
                if delay:
                    await asyncio.sleep(delay)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s"
                % (len(body), body)
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
