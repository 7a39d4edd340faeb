// build/bench.d/echo-node.js: the node "ws" peer of build/bench.
//
// Usage: NODE_PATH=/usr/share/nodejs node echo-node.js PORT
// Listens on 127.0.0.1:PORT.  /chan... is a fan-out channel (a message goes
// to every other client on the same path); any other path echoes each
// message with its own type.  No permessage-deflate (wsload offers none).
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false,
                                  maxPayload: 1 << 20, backlog: 4096 });
const channels = new Map();

wss.on('connection', (ws, req) => {
  const path = req.url;
  if (path.startsWith('/chan')) {
    if (!channels.has(path)) channels.set(path, new Set());
    const subs = channels.get(path);
    subs.add(ws);
    ws.on('close', () => subs.delete(ws));
    ws.on('message', (data, isBinary) => {
      for (const s of subs) {
        if (s !== ws) s.send(data, { binary: isBinary });
      }
    });
    return;
  }
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on('listening', () => console.log(`node ws ${require('ws/package.json').version} on ${port}`));
process.on('SIGTERM', () => process.exit(0));
