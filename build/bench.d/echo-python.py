"""build/bench.d/echo-python.py: the python "websockets" peer of build/bench.

Usage: /usr/bin/python3 echo-python.py PORT   (Debian's python3-websockets)
Listens on 127.0.0.1:PORT with asyncio.  /chan... is a fan-out channel (a
message goes to every other client on the same path); any other path echoes
each message.  No permessage-deflate (wsload offers none).
"""
import asyncio
import signal
import sys

import websockets

channels = {}


async def handler(ws, path=None):
    path = path if path is not None else ws.path
    if path.startswith("/chan"):
        subs = channels.setdefault(path, set())
        subs.add(ws)
        try:
            async for msg in ws:
                websockets.broadcast([s for s in subs if s is not ws], msg)
        finally:
            subs.discard(ws)
        return
    async for msg in ws:
        await ws.send(msg)


async def main(port):
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM,
                                                  stop.set_result, None)
    async with websockets.serve(handler, "127.0.0.1", port, compression=None,
                                max_size=1 << 20, backlog=4096):
        print("python websockets %s on %d" % (websockets.__version__, port),
              flush=True)
        await stop


asyncio.run(main(int(sys.argv[1])))
