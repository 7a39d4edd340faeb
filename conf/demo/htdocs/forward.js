/* mod_ws demo page, the Forward panel: a WebSocket to /forward, whose
 * messages the server posts to an HTTP backend (a CGI script of the same
 * httpd); the backend's answers come back on the socket.
 *
 * window.forwardState mirrors what the panel shows, for the browser test.
 */
'use strict';

(function () {
  const NAMES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') +
    location.host + '/forward';
  const $ = (id) => document.getElementById(id);
  const state = { url: url, readyState: null, sent: [], received: [], close: null };
  window.forwardState = state;
  let ws = null;

  function render() {
    const open = ws !== null && ws.readyState === WebSocket.OPEN;
    const rs = ws === null ? null : ws.readyState;
    const badge = $('fwd-state');
    badge.dataset.state = rs === null ? '' : String(rs);
    badge.textContent = rs === null ? 'not connected' : rs + ' ' + NAMES[rs];
    $('fwd-send').disabled = !open;
    $('fwd-close').disabled = !open;
    $('fwd-connect').disabled = ws !== null && ws.readyState < WebSocket.CLOSING;
  }

  function log(kind, type, body) {
    const li = document.createElement('li');
    li.className = kind;
    li.dataset.kind = kind;
    li.dataset.type = type;
    const arrows = { sent: '→ sent', received: '← backend', event: '• event' };
    for (const [cls, text] of [['time', new Date().toTimeString().slice(0, 8)],
      ['dir', arrows[kind]], ['type', type], ['body', body]]) {
      const span = document.createElement('span');
      span.className = cls;
      span.textContent = text;
      li.appendChild(span);
    }
    const list = $('fwd-log');
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  function show(data) {
    try {
      return JSON.stringify(JSON.parse(data), null, 1);
    } catch (e) {
      return data;
    }
  }

  function connect() {
    ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => { log('event', 'open', 'connected to ' + url); render(); };
    ws.onmessage = (ev) => {
      const text = typeof ev.data === 'string' ? ev.data : ev.data.byteLength + ' bytes';
      state.received.push(text);
      log('received', typeof ev.data === 'string' ? 'text' : 'binary', show(text));
    };
    ws.onclose = (ev) => {
      state.close = { code: ev.code, reason: ev.reason };
      log('event', 'close', 'code ' + ev.code + (ev.reason ? ' ' + ev.reason : ''));
      render();
    };
    render();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('fwd-url').textContent = url;
    $('fwd-connect').addEventListener('click', connect);
    $('fwd-close').addEventListener('click', () => { if (ws) ws.close(1000, 'bye'); render(); });
    $('fwd-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = $('fwd-input').value;
      if (ws && ws.readyState === WebSocket.OPEN) {
        ws.send(text);
        state.sent.push(text);
        log('sent', 'text', text);
      }
    });
    connect();
  });
}());
