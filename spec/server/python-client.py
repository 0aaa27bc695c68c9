"""A foreign WebSocket client for sluice/server's interop spec: Debian's python3-websockets
(10.x), run with /usr/bin/python3.

Usage: python-client.py URL MODE [PROTOCOLS]
MODE: echo (send text, binary, 100 kB of compressible text; read 3 back; close 1000),
      close4001 (close with 4001 'py bye' at once), wait (read until the server closes).
Prints one JSON line: protocol, extensions, received messages, close code and reason.
"""
import asyncio
import json
import sys

import websockets


def describe(message):
    if isinstance(message, str):
        return {"type": "text", "length": len(message), "head": message[:20]}
    return {"type": "binary", "data": list(message[:20]), "length": len(message)}


async def main():
    url, mode = sys.argv[1], sys.argv[2]
    protocols = sys.argv[3].split(",") if len(sys.argv) > 3 and sys.argv[3] else None
    received = []
    async with websockets.connect(
        url, subprotocols=protocols, extra_headers={"X-Python": "yes"}, ping_interval=None
    ) as ws:
        if mode == "echo":
            for message in ["hello", b"\x01\x02\xff", "a" * 100000]:
                await ws.send(message)
            for _ in range(3):
                received.append(describe(await ws.recv()))
            await ws.close(1000)
        elif mode == "close4001":
            await ws.close(4001, "py bye")
        else:
            try:
                async for message in ws:
                    received.append(describe(message))
            except websockets.ConnectionClosed:
                pass
        await ws.wait_closed()
        print(json.dumps({
            "protocol": ws.subprotocol,
            "extensions": [e.name for e in ws.extensions],
            "received": received,
            "code": ws.close_code,
            "reason": ws.close_reason,
        }), flush=True)


asyncio.run(main())
