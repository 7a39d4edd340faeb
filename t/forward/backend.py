#!/usr/bin/env python3
"""A small HTTP/1.1 backend for mod_ws's forward tests (t/ws/forward.t).

    backend.py PORTFILE

Listens on 127.0.0.1 on a free port, writes the port to PORTFILE, and
serves keep-alive HTTP/1.1 until it gets SIGTERM.  It counts the TCP
connections it accepted and keeps every request it served, so a test can
see what mod_ws sent and how many connections it used:

  GET  /_stats        {"connections": N, "requests": M}
  GET  /_log          every request so far: path, WebSocket-* headers,
                      Content-Type, body (latin-1)
  POST /echo          the body back, with the request's Content-Type
  POST /upper         the text body in upper case (text/plain)
  POST /nothing       204
  POST /fail          500
  POST /slow?s=N      sleeps N seconds, then 200 "slow"
  POST /refuse        403 to an "open" event; else like /echo
  POST /welcome       "welcome USER" to an "open" event; else like /echo
  POST /publish?ch=C  200 with "WebSocket-Publish: C" and the body
  POST /big           a 2 MiB body
  POST /json          a JSON answer naming the request's id and frame
"""
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Lock()
STATS = {"connections": 0, "requests": 0}
LOG = []


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def get_request(self):
        conn = super().get_request()
        # headers and body go out in two writes: without this, Nagle and
        # the client's delayed ACK hold every answer ~40 ms
        conn[0].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with LOCK:
            STATS["connections"] += 1
        return conn


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", ctype="text/plain", extra=()):
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if status != 204:
            self.wfile.write(body)

    def do_GET(self):
        path = urlparse(self.path).path
        with LOCK:
            if path == "/_stats":
                body = json.dumps(STATS).encode()
            elif path == "/_log":
                body = json.dumps(LOG).encode()
            else:
                body = None
        if body is None:
            self.answer(404, b"no such page")
        else:
            self.answer(200, body, "application/json")

    def do_POST(self):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n) if n else b""
        event = self.headers.get("WebSocket-Event", "")
        ctype = self.headers.get("Content-Type", "application/octet-stream")
        with LOCK:
            STATS["requests"] += 1
            LOG.append({
                "path": url.path,
                "id": self.headers.get("WebSocket-Connection-Id"),
                "user": self.headers.get("WebSocket-User"),
                "event": event,
                "frame": self.headers.get("WebSocket-Frame"),
                "code": self.headers.get("WebSocket-Close-Code"),
                "cookie": self.headers.get("Cookie"),
                "xff": self.headers.get("X-Forwarded-For"),
                "evil": self.headers.get("X-Evil"),
                "ctype": ctype,
                "body": body.decode("latin-1"),
            })
        p = url.path
        if p == "/echo":
            self.answer(200, body, ctype)
        elif p == "/upper":
            self.answer(200, body.upper(), "text/plain; charset=utf-8")
        elif p == "/nothing":
            self.answer(204)
        elif p == "/fail":
            self.answer(500, b"oops")
        elif p == "/slow":
            time.sleep(float(query.get("s", ["3"])[0]))
            self.answer(200, b"slow")
        elif p == "/refuse":
            if event == "open":
                self.answer(403, b"go away")
            else:
                self.answer(200, body, ctype)
        elif p == "/welcome":
            if event == "open":
                user = self.headers.get("WebSocket-User") or "stranger"
                self.answer(200, ("welcome " + user).encode())
            else:
                self.answer(200, body, ctype)
        elif p == "/publish":
            self.answer(200, body, ctype,
                        [("WebSocket-Publish", query.get("ch", ["x"])[0])])
        elif p == "/big":
            self.answer(200, b"x" * (2 * 1024 * 1024))
        elif p == "/json":
            self.answer(200, json.dumps({
                "id": self.headers.get("WebSocket-Connection-Id"),
                "frame": self.headers.get("WebSocket-Frame"),
                "len": len(body)}).encode(), "application/json")
        else:
            self.answer(404, b"no such page")


def main():
    server = Server(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
