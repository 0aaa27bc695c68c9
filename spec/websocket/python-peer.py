"""A foreign WebSocket peer for sluice's interop spec: Debian's python3-websockets (10.x).

Run with /usr/bin/python3. Listens on 127.0.0.1 (any free port), prints "PORT <n>", then
one JSON line per finished connection: {"path", "code", "reason", "received"}.
Paths: /echo (text stays text, binary stays binary), /close?code=C&reason=R (closes at
once), /limit (max_size 1024 bytes: a bigger message makes it close with 1009).
It exits when stdin closes.
"""
import asyncio
import json
import sys
from urllib.parse import parse_qs, urlparse

import websockets


def describe(message):
    if isinstance(message, str):
        return {"type": "text", "data": message}
    return {"type": "binary", "data": list(message)}


async def handler(websocket, path):
    url = urlparse(path)
    query = parse_qs(url.query)
    received = []
    try:
        if url.path == "/close":
            code = int(query.get("code", ["1000"])[0])
            reason = query.get("reason", [""])[0]
            await websocket.close(code, reason)
        else:
            async for message in websocket:
                received.append(describe(message))
                if url.path == "/echo":
                    await websocket.send(message)
    except websockets.ConnectionClosed:
        pass
    finally:
        await websocket.wait_closed()
        line = {
            "path": url.path,
            "code": websocket.close_code,
            "reason": websocket.close_reason,
            "received": received,
        }
        print(json.dumps(line), flush=True)


async def main():
    limited = await websockets.serve(handler, "127.0.0.1", 0, max_size=1024, ping_interval=None)
    default = await websockets.serve(handler, "127.0.0.1", 0, ping_interval=None)
    ports = (default.sockets[0].getsockname()[1], limited.sockets[0].getsockname()[1])
    print("PORT %d %d" % ports, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for server in (default, limited):
        server.close()
        await server.wait_closed()


asyncio.run(main())
