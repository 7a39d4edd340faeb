#!/usr/bin/env python3
"""dbdload: queries per second through mod_ws's dbd handler.

    dbdload.py [-p PORT] [-P /path] [-c CONNS] [-d SECONDS] [-m MESSAGE]

Opens CONNS WebSockets to 127.0.0.1:PORT/path (loopback only), and on each
keeps one query in flight for SECONDS: MESSAGE is a JSON object such as
{"query":"item","params":[7]}; an "id" is added per query and checked in
the answer.  Prints key=value figures (queries, qps, errors, busy, latency
percentiles in ms).  Exits 1 on a protocol error, an answer for the wrong
id, or when a connection ends early.  Standard library only.
"""
import argparse
import base64
import json
import os
import selectors
import socket
import struct
import sys
import time


def fail(msg):
    print("dbdload: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


class Conn:
    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % (path, port, key))
        self.sock.sendall(req.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                fail("the server closed during the handshake")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            fail("handshake refused: " + head.split(b"\r\n")[0].decode())
        self.buf = rest
        self.sock.setblocking(False)
        self.next_id = 0
        self.sent_at = 0.0
        self.want = None

    def send(self, obj):
        self.next_id += 1
        obj["id"] = self.next_id
        self.want = self.next_id
        payload = json.dumps(obj, separators=(",", ":")).encode()
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sent_at = time.monotonic()
        self.sock.setblocking(True)
        self.sock.sendall(head + mask + masked)
        self.sock.setblocking(False)

    def frames(self):
        """Whole frames in the buffer: (opcode, payload)."""
        out = []
        while True:
            b = self.buf
            if len(b) < 2:
                break
            op, ln = b[0] & 0x0F, b[1] & 0x7F
            if b[1] & 0x80:
                fail("a masked frame from the server")
            off = 2
            if ln == 126:
                if len(b) < 4:
                    break
                ln = struct.unpack("!H", b[2:4])[0]
                off = 4
            elif ln == 127:
                if len(b) < 10:
                    break
                ln = struct.unpack("!Q", b[2:10])[0]
                off = 10
            if len(b) < off + ln:
                break
            if not b[0] & 0x80:
                fail("a fragmented answer (not expected from dbd)")
            out.append((op, b[off:off + ln]))
            self.buf = b[off + ln:]
        return out


def percentile(sorted_ms, p):
    if not sorted_ms:
        return 0.0
    k = min(len(sorted_ms) - 1, int(round(p / 100.0 * (len(sorted_ms) - 1))))
    return sorted_ms[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-p", "--port", type=int, default=8080)
    ap.add_argument("-P", "--path", default="/dbd")
    ap.add_argument("-c", "--conns", type=int, default=1)
    ap.add_argument("-d", "--seconds", type=float, default=5)
    ap.add_argument("-m", "--message", default='{"query":"item","params":[7]}')
    a = ap.parse_args()
    if not 1 <= a.conns <= 1000 or not 0 < a.seconds <= 600:
        fail("-c is 1..1000 and -d 0..600")
    template = json.loads(a.message)
    conns = [Conn(a.port, a.path) for _ in range(a.conns)]
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    lat, errors, busy = [], 0, 0
    first_error = None
    start = time.monotonic()
    end = start + a.seconds
    for c in conns:
        c.send(dict(template))
    while True:
        now = time.monotonic()
        if now >= end:
            break
        for key, _ in sel.select(timeout=min(1.0, end - now)):
            c = key.data
            try:
                chunk = c.sock.recv(262144)
            except BlockingIOError:
                continue
            if not chunk:
                fail("a connection ended early")
            c.buf += chunk
            for op, payload in c.frames():
                if op == 0x9 or op == 0xA:
                    continue  # pings: the server's idle timer is far away
                if op != 0x1:
                    fail("opcode %d from the server" % op)
                ans = json.loads(payload)
                if ans.get("id") != c.want:
                    fail("answer for id %r, expected %r" % (ans.get("id"), c.want))
                t = time.monotonic()
                lat.append((t - c.sent_at) * 1000.0)
                if "error" in ans:
                    if ans["error"] == "busy":
                        busy += 1
                    else:
                        errors += 1
                        first_error = first_error or ans["error"]
                if t < end:
                    c.send(dict(template))
    elapsed = time.monotonic() - start
    for c in conns:
        c.sock.close()
    lat.sort()
    print("conns=%d seconds=%.1f queries=%d qps=%.0f errors=%d busy=%d "
          "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f"
          % (a.conns, elapsed, len(lat), len(lat) / elapsed, errors, busy,
             percentile(lat, 50), percentile(lat, 99), lat[-1] if lat else 0))
    if first_error:
        print("first_error=" + json.dumps(first_error))


if __name__ == "__main__":
    main()
