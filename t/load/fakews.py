#!/usr/bin/env python3
"""fakews.py: a small WebSocket server that misbehaves on command.

The test server of wsload's unit test (t/load/test_wsload.sh), Python 3
standard library only.  It speaks just enough RFC 6455 for wsload:

  /echo...   echoes every data message (same opcode)
  /chan...   fan-out: a data message from one WebSocket goes to every other
             WebSocket on the same path; a POST to the path goes to all of
             them (answered 204)
  anything   a close frame is answered with a close frame, then TCP ends

--fault makes it misbehave once it has served --after messages (so wsload
first sees a good stream):

  none       behave
  byte       flip one byte of an echo
  masked     send an echo as a masked frame (servers must not mask, §5.1)
  drop       do not deliver one fan-out message to the first subscriber
  dup        deliver one fan-out message twice to the first subscriber
  reorder    swap two fan-out messages for the first subscriber
  close      close an echo WebSocket with 1011 in the middle of the run

It prints "PORT <n>" on stdout once it listens (--port 0 picks a free one)
and serves until killed.  Test tool only: it trusts its client.
"""
import argparse
import asyncio
import base64
import hashlib
import struct
import sys

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode, payload, mask=None):
    """One unfragmented frame; masked when mask (4 bytes) is given."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + payload
    return head + payload


class Server:
    def __init__(self, fault, after):
        self.fault = fault
        self.after = after
        self.echoed = 0
        self.fanned = 0
        self.faulted = False
        self.channels = {}         # path -> list of Peer
        self.held = None           # reorder: the message held back

    def due(self, count):
        """True once, when the fault's moment has come."""
        if self.faulted or count < self.after:
            return False
        self.faulted = True
        return True

    async def fan_out(self, path, sender, opcode, payload):
        """Deliver to every WebSocket on path but the sender."""
        self.fanned += 1
        subs = [p for p in self.channels.get(path, []) if p is not sender]
        for i, peer in enumerate(subs):
            out = frame(opcode, payload)
            if i == 0 and self.fault in ("drop", "dup", "reorder"):
                if self.held is not None:
                    out, self.held = out + self.held, None
                elif self.due(self.fanned):
                    if self.fault == "drop":
                        continue
                    if self.fault == "dup":
                        out = out + out
                    if self.fault == "reorder":
                        self.held = out
                        continue
            peer.writer.write(out)
        for peer in subs:
            await peer.writer.drain()


class Peer:
    def __init__(self, server, reader, writer):
        self.server = server
        self.reader = reader
        self.writer = writer

    async def read_head(self):
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return method, path, headers

    async def serve(self):
        try:
            method, path, headers = await self.read_head()
            if method == "POST":
                await self.serve_post(path, headers)
                return
            key = headers.get("sec-websocket-key", "")
            accept = base64.b64encode(hashlib.sha1(key.encode() + GUID)
                                      .digest()).decode()
            self.writer.write(("HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: %s\r\n\r\n" % accept)
                              .encode())
            if path.startswith("/chan"):
                self.server.channels.setdefault(path, []).append(self)
            try:
                await self.frames(path)
            finally:
                if path in self.server.channels:
                    self.server.channels[path].remove(self)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.writer.close()

    async def serve_post(self, path, headers):
        while True:
            n = int(headers.get("content-length", "0"))
            body = await self.reader.readexactly(n)
            await self.server.fan_out(path, None, 1, body)
            self.writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await self.writer.drain()
            method, path, headers = await self.read_head()

    async def frames(self, path):
        srv = self.server
        while True:
            b0, b1 = await self.reader.readexactly(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            mask = await self.reader.readexactly(4) if b1 & 0x80 else None
            data = await self.reader.readexactly(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if opcode == 8:            # close: answer, end TCP (§7.1.1)
                self.writer.write(frame(8, data[:2]))
                await self.writer.drain()
                return
            if opcode in (9, 10):      # ping/pong: wsload sends none
                continue
            if path.startswith("/chan"):
                await srv.fan_out(path, self, opcode, data)
                continue
            srv.echoed += 1
            out = frame(opcode, data)
            if srv.fault == "byte" and n > 20 and srv.due(srv.echoed):
                data = bytearray(data)
                data[20] ^= 0x55
                out = frame(opcode, bytes(data))
            elif srv.fault == "masked" and srv.due(srv.echoed):
                out = frame(opcode, data, mask=b"\x01\x02\x03\x04")
            elif srv.fault == "close" and srv.due(srv.echoed):
                self.writer.write(frame(8, struct.pack("!H", 1011)))
                await self.writer.drain()
                return
            self.writer.write(out)
            await self.writer.drain()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fault", default="none",
                    choices=["none", "byte", "masked", "drop", "dup",
                             "reorder", "close"])
    ap.add_argument("--after", type=int, default=20)
    args = ap.parse_args()
    server = Server(args.fault, args.after)
    srv = await asyncio.start_server(
        lambda r, w: Peer(server, r, w).serve(), "127.0.0.1", args.port,
        backlog=1024)
    print("PORT %d" % srv.sockets[0].getsockname()[1], flush=True)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
