#!/usr/bin/env python3
# The demo's backend for <Location /forward> (WebSocketHandler forward):
# an ordinary CGI script.  mod_ws POSTs each WebSocket message here with
# headers naming the socket, the user, the event and the frame type; what
# this prints goes back to the socket as a message (JSON: as text).
import datetime
import json
import os
import sys

n = int(os.environ.get("CONTENT_LENGTH") or 0)
body = sys.stdin.buffer.read(n) if n else b""
answer = {
    "from": "hello.cgi",
    "event": os.environ.get("HTTP_WEBSOCKET_EVENT"),
    "socket": os.environ.get("HTTP_WEBSOCKET_CONNECTION_ID"),
    "frame": os.environ.get("HTTP_WEBSOCKET_FRAME"),
    "you_sent": body.decode("utf-8", "replace"),
    "reversed": body.decode("utf-8", "replace")[::-1],
    "at": datetime.datetime.now().strftime("%H:%M:%S"),
}
sys.stdout.write("Content-Type: application/json\r\n\r\n")
sys.stdout.write(json.dumps(answer))
