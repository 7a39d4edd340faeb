#!/usr/bin/env python3
"""The HTTP backend of t/ws/forward.t: what `WebSocketHandler forward URL`
posts to.  HTTP/1.1 with keep-alive, one thread per connection; it counts
the TCP connections it accepted, so the test can show they are reused.

    fwd_backend.py PORT      (binds 127.0.0.1 only; runs until killed)

Paths (POST):
  /echo      the body back with the request's Content-Type; a body of
             "204" gets 204, "500" gets 500, "hang" sleeps 15 s first,
             "big" gets 5000 bytes, "badutf8" gets invalid UTF-8 as text
  /binary    the body back as application/octet-stream
  /inspect   JSON of the request: the WebSocket-* headers, Content-Type,
             X-Forwarded-For and the body (latin-1 decoded)
  /slow      body "MS:TEXT": sleeps MS milliseconds, answers TEXT
  /refuse    403 to an open event, the body back to a message
  /record    appends "event id frame code body" to the log; open gets
             "welcome", close and message 204 ("m:..." messages get "ok")
GET /log     the recorded lines;  GET /stats  "connections N requests N"
"""
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json

lock = threading.Lock()
stats = {"connections": 0, "requests": 0}
log = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # headers and body are two writes: without this, Nagle and the
        # client's delayed ACK add 40 ms to every answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with lock:
            stats["connections"] += 1

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body=b"", ctype="text/plain; charset=utf-8",
               headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if status != 204:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 204:
            self.wfile.write(body)

    def do_GET(self):
        if self.path == "/stats":
            with lock:
                text = "connections %d requests %d" % (
                    stats["connections"], stats["requests"])
            self.answer(200, text.encode())
        elif self.path == "/log":
            with lock:
                text = "".join(line + "\n" for line in log)
            self.answer(200, text.encode())
        else:
            self.answer(404, b"no such path")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with lock:
            stats["requests"] += 1
        h = self.headers
        event = h.get("WebSocket-Event", "")
        ctype = h.get("Content-Type") or "text/plain"
        path = self.path
        if path == "/echo":
            if body == b"204":
                self.answer(204)
            elif body == b"500":
                self.answer(500, b"backend error")
            elif body == b"hang":
                time.sleep(15)
                self.answer(200, b"too late")
            elif body == b"big":
                self.answer(200, b"x" * 5000)
            elif body == b"badutf8":
                self.answer(200, b"\xff\xfe bad")
            else:
                self.answer(200, body, ctype)
        elif path == "/binary":
            self.answer(200, body, "application/octet-stream")
        elif path == "/inspect":
            seen = {k: h.get(k) for k in (
                "WebSocket-Connection-Id", "WebSocket-Event",
                "WebSocket-Frame", "WebSocket-User", "Content-Type",
                "X-Forwarded-For")}
            seen["method"] = self.command
            seen["body"] = body.decode("latin-1")
            self.answer(200, json.dumps(seen, sort_keys=True).encode(),
                        "application/json")
        elif path == "/slow":
            ms, _, text = body.partition(b":")
            time.sleep(min(int(ms or 0), 5000) / 1000.0)
            self.answer(200, text)
        elif path == "/refuse":
            if event == "open":
                self.answer(403, b"not you")
            else:
                self.answer(200, body, ctype)
        elif path == "/record":
            with lock:
                log.append(" ".join([
                    event, h.get("WebSocket-Connection-Id", "-"),
                    h.get("WebSocket-Frame", "-"),
                    h.get("WebSocket-Close-Code", "-"),
                    body.decode("latin-1") or "-"]))
            if event == "open":
                self.answer(200, b"welcome")
            elif event == "message" and body.startswith(b"m:"):
                self.answer(200, b"ok " + body)
            else:
                self.answer(204)
        else:
            self.answer(404, b"no such path")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    port = int(sys.argv[1])
    srv = Server(("127.0.0.1", port), Handler)
    print("listening on 127.0.0.1:%d" % port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
