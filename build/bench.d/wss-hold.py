#!/usr/bin/env python3
"""Hold N wss:// WebSockets on a server, then echo one message on each.

For build/bench-scale: opens N sockets at a bounded rate (TLS handshakes run
on the server's worker threads), holds them, prints the servers' RSS per
socket (PIDs and their children, from /proc) and the time of a plain HTTPS
GET meanwhile, then checks one echoed message on every socket. Standard
library only; its own minimal client (masked frames, RFC 6455).  Exits 1
with "wss-hold: FAIL: ..." on any refused handshake or wrong echo.
"""
import asyncio, base64, hashlib, os, resource, ssl, struct, sys, time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def rss_kb(pids):
    total = 0
    seen = set()
    todo = list(pids)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return total


def fail(msg):
    print(f"wss-hold: FAIL: {msg}", flush=True)
    sys.exit(1)


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


async def open_ws(port, path, c):
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=c)
    key = base64.b64encode(os.urandom(16))
    w.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " % port + key +
            b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = await r.readuntil(b"\r\n\r\n")
    want = base64.b64encode(hashlib.sha1(key + GUID).digest())
    if not head.startswith(b"HTTP/1.1 101") or want not in head:
        fail("handshake: " + head.split(b"\r\n")[0].decode())
    return r, w


async def echo(r, w, payload):
    mask = os.urandom(4)
    n = len(payload)
    hdr = struct.pack("!BB", 0x82, 0x80 | n)
    w.write(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    while True:
        b0, b1 = await r.readexactly(2)
        ln = b1 & 0x7F
        if ln == 126:
            ln = struct.unpack("!H", await r.readexactly(2))[0]
        data = await r.readexactly(ln)
        if b0 & 0x0F == 0x9:          # ping: answer, keep reading
            m = os.urandom(4)
            w.write(struct.pack("!BB", 0x8A, 0x80 | ln) + m +
                    bytes(b ^ m[i % 4] for i, b in enumerate(data)))
            continue
        if data != payload:
            fail("wrong echo")
        return


async def get_ms(port, c):
    t = time.monotonic()
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=c)
    w.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await r.read()
    w.close()
    return (time.monotonic() - t) * 1000


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port, n, rate, hold = (int(sys.argv[1]), int(sys.argv[2]),
                           float(sys.argv[3]), float(sys.argv[4]))
    pids = [int(p) for p in sys.argv[5].split(",")] if len(sys.argv) > 5 else []
    c = ctx()
    before = rss_kb(pids)
    socks = []
    t0 = time.monotonic()
    pending = set()
    for i in range(n):
        pending.add(asyncio.ensure_future(open_ws(port, "/echo", c)))
        if len(pending) >= 100:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            socks += [d.result() for d in done]
        lag = t0 + (i + 1) / rate - time.monotonic()
        if lag > 0:
            await asyncio.sleep(lag)
    if pending:
        socks += [d.result() for d in (await asyncio.wait(pending))[0]]
    opened = time.monotonic() - t0
    await asyncio.sleep(hold)
    held = rss_kb(pids)
    gets = sorted([await get_ms(port, c) for _ in range(5)])
    t1 = time.monotonic()
    await asyncio.gather(*(echo(r, w, b"wss %d" % i) for i, (r, w) in enumerate(socks)))
    echo_s = time.monotonic() - t1
    print(f"wss_sockets={len(socks)} open_s={opened:.1f} rss_before_kb={before} "
          f"rss_held_kb={held} kb_per_socket={(held - before) / max(n, 1):.1f} "
          f"https_get_ms_max={gets[-1]:.1f} https_get_ms_p50={gets[2]:.1f} "
          f"echoed={len(socks)} echo_all_s={echo_s:.2f}", flush=True)
    for r, w in socks:
        w.close()


asyncio.run(main())
