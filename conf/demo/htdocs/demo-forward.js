/* mod_ws demo page: the "Forward" panel, one WebSocket to /forward, whose
 * every message mod_ws POSTs to a CGI script (backend/hello.cgi) and whose
 * answers come back as messages.
 *
 * window.demoForward mirrors what the panel shows, for tests.
 */
'use strict';

(function () {
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') +
    location.host + '/forward';
  const $ = (id) => document.getElementById(id);
  const state = { url: url, open: false, sent: [], answers: [] };
  window.demoForward = state;
  let ws = null;

  function line(cls, text) {
    const li = document.createElement('li');
    li.className = cls;
    const t = document.createElement('span');
    t.className = 'time';
    t.textContent = new Date().toTimeString().slice(0, 8);
    const b = document.createElement('span');
    b.className = 'body';
    b.textContent = text;
    li.append(t, b);
    $('fwd-log').prepend(li);
  }

  const NAMES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];

  function render() {
    const badge = $('fwd-state');
    const rs = ws ? ws.readyState : WebSocket.CLOSED;
    badge.textContent = rs + ' ' + NAMES[rs];
    badge.dataset.state = String(rs);
    $('fwd-send').disabled = rs !== WebSocket.OPEN;
  }

  function connect() {
    ws = new WebSocket(url);
    ws.onopen = function () { state.open = true; render(); };
    ws.onclose = function () { state.open = false; render(); };
    ws.onmessage = function (ev) {
      let shown = ev.data;
      try {
        const a = JSON.parse(ev.data);
        state.answers.push(a);
        shown = a.error ? 'error: ' + a.error
          : a.from + ' (' + a.at + '): you sent “' + a.you_sent + '”, reversed “' +
            a.reversed + '”';
      } catch (e) {
        state.answers.push({ raw: ev.data });
      }
      line('in', shown);
    };
  }

  function send(ev) {
    ev.preventDefault();
    const text = $('fwd-input').value;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      line('error', 'not connected');
      return;
    }
    ws.send(text);
    state.sent.push(text);
    line('out', text);
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('fwd-url').textContent = url;
    $('fwd-form').addEventListener('submit', send);
    render();
    connect();
  });
})();
