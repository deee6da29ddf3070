"""A minimal keep-alive HTTP/1.1 receiver for benchmarks (asyncio protocol).

Answers every request with ``200 ok`` and remembers when each ``webhook-id``
arrived. ``GET /stats`` returns ``{"count": n, "arrivals": {id: unix_time}}``.
Run: ``python benchmarks/fast_receiver.py PORT``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"


class Handler(asyncio.Protocol):
    arrivals: dict[str, float] = {}
    count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            webhook_id = None
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "webhook-id":
                    webhook_id = value.strip()
            total = head_end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            if head.startswith("GET /stats"):
                body = json.dumps({"count": Handler.count, "arrivals": Handler.arrivals}).encode()
                self.transport.write(  # type: ignore[attr-defined]
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
                continue
            if head.startswith("DELETE /stats"):
                Handler.arrivals.clear()
                Handler.count = 0
            else:
                Handler.count += 1
                if webhook_id is not None:
                    Handler.arrivals.setdefault(webhook_id, time.time())
            self.transport.write(OK)  # type: ignore[attr-defined]


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Handler, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
