/* mod_ws demo page: one WebSocket to /echo on the page's own host.
 *
 * Plain browser JavaScript, no framework.  window.demoState mirrors what the
 * page shows (readyState history, what was sent and received, the close), so
 * a test can read it besides the visible text.
 */
'use strict';

(function () {
  const NAMES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
  const SHOW_BYTES = 64;      /* bytes shown as hex in the log; the rest is cut */
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') +
    location.host + '/echo';
  const $ = (id) => document.getElementById(id);

  const state = {
    url: url,
    readyState: null,   /* of the current socket */
    history: [],        /* readyStates of the current socket, in order */
    connections: 0,     /* sockets opened by this page */
    events: [],         /* {type: 'open'|'error'|'close', ...} */
    sent: [],           /* {type: 'text'|'json'|'binary', ...} */
    received: [],
    close: null,        /* {code, reason, wasClean} of the last close */
  };
  window.demoState = state;

  let ws = null;
  let lastSentBytes = null;

  function stateLabel(rs) {
    return rs + ' ' + NAMES[rs];
  }

  function hex(bytes, limit) {
    const n = Math.min(bytes.length, limit === undefined ? bytes.length : limit);
    const parts = new Array(n);
    for (let i = 0; i < n; i++) {
      parts[i] = bytes[i].toString(16).padStart(2, '0');
    }
    return parts.join(' ') + (n < bytes.length ? ' …' : '');
  }

  function sameBytes(a, b) {
    if (!a || !b || a.length !== b.length) {
      return false;
    }
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) {
        return false;
      }
    }
    return true;
  }

  /* ---- what the page shows ---- */

  function render() {
    const badge = $('state');
    const open = ws !== null && ws.readyState === WebSocket.OPEN;
    const idle = ws === null || ws.readyState === WebSocket.CLOSED;
    if (state.readyState === null) {
      badge.textContent = 'not connected';
      badge.dataset.state = '';
    } else {
      badge.textContent = stateLabel(state.readyState);
      badge.dataset.state = String(state.readyState);
    }
    $('connect').disabled = !idle;
    $('close').disabled = !open;
    $('send-text').disabled = !open;
    $('send-json').disabled = !open;
    $('send-binary').disabled = !open;
    $('counts').textContent = state.sent.length + ' sent, ' +
      state.received.length + ' received';
  }

  function setReadyState(rs) {
    if (rs === state.readyState) {
      return;
    }
    state.readyState = rs;
    state.history.push(rs);
    const li = document.createElement('li');
    li.textContent = stateLabel(rs);
    li.dataset.state = String(rs);
    $('history').appendChild(li);
    render();
  }

  function time() {
    const d = new Date();
    return d.toTimeString().slice(0, 8) + '.' +
      String(d.getMilliseconds()).padStart(3, '0');
  }

  /* kind: sent|received|event|error; type: text|JSON|binary|open|close|error */
  function log(kind, type, body, meta) {
    const li = document.createElement('li');
    li.className = kind;
    li.dataset.kind = kind;
    li.dataset.type = type;
    const arrows = { sent: '→ sent', received: '← received', event: '• event', error: '! error' };
    for (const [cls, text] of [['time', time()], ['dir', arrows[kind]], ['type', type]]) {
      const span = document.createElement('span');
      span.className = cls;
      span.textContent = text;
      li.appendChild(span);
    }
    const b = document.createElement('span');
    b.className = 'body';
    b.textContent = body;
    if (meta) {
      const m = document.createElement('span');
      m.className = 'meta' + (meta.cls ? ' ' + meta.cls : '');
      m.textContent = meta.text;
      b.appendChild(m);
    }
    li.appendChild(b);
    const list = $('log');
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  /* ---- the socket ---- */

  function connect() {
    if (ws !== null && ws.readyState !== WebSocket.CLOSED) {
      return;
    }
    state.history = [];
    state.readyState = null;
    state.close = null;
    $('history').textContent = '';
    $('close-info').hidden = true;

    let sock;
    try {
      sock = new WebSocket(url);
    } catch (e) {
      log('error', 'error', 'cannot open ' + url + ': ' + e.message);
      return;
    }
    ws = sock;
    sock.binaryType = 'arraybuffer';
    state.connections++;
    setReadyState(sock.readyState);

    sock.onopen = function () {
      if (sock !== ws) return;
      setReadyState(sock.readyState);
      state.events.push({ type: 'open', protocol: sock.protocol,
        extensions: sock.extensions });
      const details = [sock.protocol && 'subprotocol ' + sock.protocol,
        sock.extensions && 'extensions: ' + sock.extensions].filter(Boolean);
      log('event', 'open', 'connected to ' + url,
        details.length ? { text: details.join('; ') } : null);
    };

    sock.onmessage = function (ev) {
      if (sock !== ws) return;
      if (typeof ev.data === 'string') {
        received(ev.data);
      } else if (ev.data instanceof ArrayBuffer) {
        receivedBinary(new Uint8Array(ev.data), 'ArrayBuffer');
      } else if (ev.data instanceof Blob) {
        ev.data.arrayBuffer().then((buf) => receivedBinary(new Uint8Array(buf), 'Blob'));
      }
    };

    sock.onerror = function () {
      if (sock !== ws) return;
      state.events.push({ type: 'error' });
      /* Browsers tell scripts nothing more; httpd's error log has the why. */
      log('error', 'error', state.history.includes(1)
        ? 'the connection failed'
        : 'the server did not accept the WebSocket at ' + url);
      setReadyState(sock.readyState);
    };

    sock.onclose = function (ev) {
      if (sock !== ws) return;
      setReadyState(sock.readyState);
      state.close = { code: ev.code, reason: ev.reason, wasClean: ev.wasClean };
      state.events.push({ type: 'close', code: ev.code, reason: ev.reason, wasClean: ev.wasClean });
      $('close-code').textContent = String(ev.code);
      $('close-reason').textContent = ev.reason;
      $('close-clean').textContent = String(ev.wasClean);
      $('close-info').hidden = false;
      log('event', 'close', 'code ' + ev.code + (ev.reason ? ' “' + ev.reason + '”' : ''),
        { text: 'wasClean ' + ev.wasClean, cls: ev.wasClean ? 'ok' : 'bad' });
      render();
    };
    render();
  }

  function received(text) {
    const t = text.trimStart();
    if (t.startsWith('{') || t.startsWith('[')) {
      try {
        const value = JSON.parse(text);
        state.received.push({ type: 'json', text: text, value: value });
        log('received', 'JSON', JSON.stringify(value, null, 2),
          { text: 'parsed, ' + text.length + ' characters' });
        render();
        return;
      } catch (e) {
        /* not JSON after all: show it as text */
      }
    }
    state.received.push({ type: 'text', text: text });
    log('received', 'text', text, { text: text.length + ' characters' });
    render();
  }

  function receivedBinary(bytes, dataType) {
    const same = sameBytes(bytes, lastSentBytes);
    state.received.push({
      type: 'binary', dataType: dataType, length: bytes.length,
      hex: hex(bytes), matchesSent: same,
    });
    log('received', 'binary', bytes.length + ' bytes: ' + hex(bytes, SHOW_BYTES), {
      text: dataType + ', ' + (same ? 'same bytes as sent' : 'differs from what was sent'),
      cls: same ? 'ok' : 'bad',
    });
    render();
  }

  function canSend() {
    return ws !== null && ws.readyState === WebSocket.OPEN;
  }

  function sendText(ev) {
    ev.preventDefault();
    if (!canSend()) return;
    const text = $('text-input').value;
    ws.send(text);
    state.sent.push({ type: 'text', text: text });
    log('sent', 'text', text, { text: text.length + ' characters' });
    render();
  }

  function sendJSON(ev) {
    ev.preventDefault();
    if (!canSend()) return;
    let value;
    try {
      value = JSON.parse($('json-input').value);
    } catch (e) {
      $('json-error').textContent = 'not JSON: ' + e.message;
      return;
    }
    if (value === null || typeof value !== 'object') {
      $('json-error').textContent = 'send an object or an array';
      return;
    }
    $('json-error').textContent = '';
    const text = JSON.stringify(value);
    ws.send(text);
    state.sent.push({ type: 'json', text: text, value: value });
    log('sent', 'JSON', JSON.stringify(value, null, 2), { text: text.length + ' characters' });
    render();
  }

  function sendBinary(ev) {
    ev.preventDefault();
    if (!canSend()) return;
    const n = Math.max(1, Math.min(1048576, parseInt($('binary-size').value, 10) || 256));
    const bytes = new Uint8Array(n);
    for (let off = 0; off < n; off += 65536) {
      crypto.getRandomValues(bytes.subarray(off, Math.min(n, off + 65536)));
    }
    lastSentBytes = bytes;
    ws.send(bytes.buffer);
    state.sent.push({ type: 'binary', length: n, hex: hex(bytes) });
    log('sent', 'binary', n + ' bytes: ' + hex(bytes, SHOW_BYTES), { text: 'an ArrayBuffer' });
    render();
  }

  function closeSocket() {
    if (!canSend()) return;
    ws.close(1000, 'Close button');
    setReadyState(ws.readyState);
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('ws-url').textContent = url;
    $('connect').addEventListener('click', connect);
    $('close').addEventListener('click', closeSocket);
    $('text-form').addEventListener('submit', sendText);
    $('json-form').addEventListener('submit', sendJSON);
    $('binary-form').addEventListener('submit', sendBinary);
    $('clear-log').addEventListener('click', function () {
      $('log').textContent = '';
    });
    /* readyState has no event for CLOSING when the server starts the close:
     * look at it often, so the history misses no state. */
    setInterval(function () {
      if (ws !== null) setReadyState(ws.readyState);
    }, 20);
    render();
    connect();
  });
})();

/* The chat: one WebSocket to /chat (WebSocketHandler channel, channel
 * "chat", WebSocketChannelControl on).  The server's first message is the
 * hello, {"event":"hello","id":"PID-N","user":…,"channels":["chat"]}: the
 * page shows the id ("you are 12345-7").  Every later message is a chat
 * line as some socket sent it (or a POST to /publish/chat); the server
 * adds no envelope, so the page marks a line as its own when it matches
 * the oldest thing it sent and has not seen back yet (echo is on).
 * window.chatState mirrors what the page shows.
 */
(function () {
  const NAMES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') +
    location.host + '/chat';
  const $ = (id) => document.getElementById(id);

  const state = {
    url: url,
    readyState: null,
    id: null,           /* from the hello */
    user: null,
    channels: [],
    hello: null,
    messages: [],       /* {text, own, binary, bytes} in arrival order */
    sent: [],
    errors: [],         /* {"error":…} answers from the server */
    close: null,
  };
  window.chatState = state;

  let ws = null;
  let pending = [];     /* sent, not yet seen back */

  function time() {
    const d = new Date();
    return d.toTimeString().slice(0, 8);
  }

  function render() {
    const badge = $('chat-state');
    if (state.readyState === null) {
      badge.textContent = 'not connected';
      badge.dataset.state = '';
    } else {
      badge.textContent = state.readyState + ' ' + NAMES[state.readyState];
      badge.dataset.state = String(state.readyState);
    }
    const open = ws !== null && ws.readyState === WebSocket.OPEN;
    $('chat-send').disabled = !open;
    $('chat-id').textContent = state.id === null ? '…' : state.id;
    $('chat-me-note').textContent = state.id === null ? '' :
      (state.user ? 'user ' + state.user + ', ' : '') + 'on ' + state.channels.join(', ');
    $('chat-counts').textContent = state.messages.length + ' message' +
      (state.messages.length === 1 ? '' : 's');
    const base = location.protocol + '//' + location.host + '/publish/';
    $('chat-curl').textContent = "curl -d 'hello' " + base + 'chat';
    $('chat-curl-me').textContent = state.id === null ? base + 'conn:ID' :
      "curl -d 'just you' " + base + 'conn:' + state.id;
  }

  function line(cls, who, text) {
    const li = document.createElement('li');
    li.className = cls;
    for (const [c, t] of [['time', time()], ['dir', who], ['body', text]]) {
      const span = document.createElement('span');
      span.className = c;
      span.textContent = t;
      li.appendChild(span);
    }
    const list = $('chat-log');
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  function onText(text) {
    if (state.hello === null) {
      /* the first message of a control-on location is the hello */
      let h = null;
      try { h = JSON.parse(text); } catch (e) { /* not the hello */ }
      if (h && h.event === 'hello') {
        state.hello = h;
        state.id = h.id;
        state.user = h.user;
        state.channels = h.channels || [];
        line('notice', '•', 'you are ' + h.id);
        render();
        return;
      }
    }
    if (text.startsWith('{"error"')) {
      state.errors.push(text);
      line('error', '! server', text);
      return;
    }
    const own = pending.length > 0 && pending[0] === text;
    if (own) pending.shift();
    state.messages.push({ text: text, own: own, binary: false });
    line(own ? 'received own' : 'received', own ? 'you' : '←', text);
    render();
  }

  function connect() {
    if (ws !== null && ws.readyState !== WebSocket.CLOSED) return;
    state.hello = null;
    state.id = null;
    state.close = null;
    pending = [];
    const sock = new WebSocket(url);
    ws = sock;
    sock.binaryType = 'arraybuffer';
    state.readyState = sock.readyState;
    render();
    sock.onopen = function () {
      if (sock !== ws) return;
      state.readyState = sock.readyState;
      render();
    };
    sock.onmessage = function (ev) {
      if (sock !== ws) return;
      if (typeof ev.data === 'string') {
        onText(ev.data);
      } else {
        const n = ev.data.byteLength;
        state.messages.push({ text: null, own: false, binary: true, bytes: n });
        line('received', '←', '(' + n + ' bytes of binary data)');
        render();
      }
    };
    sock.onclose = function (ev) {
      if (sock !== ws) return;
      state.readyState = sock.readyState;
      state.close = { code: ev.code, reason: ev.reason, wasClean: ev.wasClean };
      line('notice', '•', 'closed: code ' + ev.code + (ev.reason ? ' “' + ev.reason + '”' : ''));
      render();
    };
    sock.onerror = function () {
      if (sock !== ws) return;
      state.readyState = sock.readyState;
      render();
    };
  }

  function send(ev) {
    ev.preventDefault();
    const input = $('chat-input');
    const text = input.value;
    if (!text || ws === null || ws.readyState !== WebSocket.OPEN) return;
    ws.send(text);
    pending.push(text);
    state.sent.push(text);
    input.value = '';
    input.focus();
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('chat-url').textContent = url;
    $('chat-form').addEventListener('submit', send);
    $('chat-reconnect').addEventListener('click', function () {
      /* the old socket's handlers ignore it from now on */
      const old = ws;
      ws = null;
      if (old !== null && old.readyState === WebSocket.OPEN) old.close(1000, 'reconnect');
      connect();
    });
    render();
    connect();
  });
})();

/* The database panel: its own WebSocket to /dbd.  Each Run sends
 * {"id":N,"query":LABEL,"params":[...]} and shows the answer's columns and
 * rows as a table, or its error.  window.demoState.dbd records the answers
 * for tests. */
(function () {
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') +
    location.host + '/dbd';
  const $ = (id) => document.getElementById(id);
  /* label -> the parameter it takes (none, or a default value) */
  const PARAMS = { planets: null, moons: '20', named: '%n%' };
  const NAMES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
  const dbd = { url: url, readyState: null, sent: [], answers: [] };
  let ws = null;
  let nextId = 1;

  function showState() {
    const badge = $('dbd-state');
    const rs = ws ? ws.readyState : null;
    dbd.readyState = rs;
    badge.textContent = rs === null ? 'not connected' : rs + ' ' + NAMES[rs];
    badge.dataset.state = rs === null ? '' : String(rs);
    $('dbd-run').disabled = rs !== WebSocket.OPEN;
  }

  function showParam() {
    const p = PARAMS[$('dbd-query').value];
    const input = $('dbd-param');
    input.hidden = p === null;
    if (p !== null && input.dataset.label !== $('dbd-query').value) {
      input.value = p;
    }
    input.dataset.label = $('dbd-query').value;
  }

  function cell(tag, text) {
    const c = document.createElement(tag);
    if (text === null) {
      c.textContent = 'NULL';
      c.className = 'null';
    } else {
      c.textContent = text;
    }
    return c;
  }

  function showAnswer(a) {
    const head = $('dbd-table').querySelector('thead tr');
    const body = $('dbd-table').querySelector('tbody');
    $('dbd-error').textContent = a.error ? 'error: ' + a.error : '';
    head.textContent = '';
    body.textContent = '';
    $('dbd-count').textContent = '';
    if (a.columns) {
      for (const name of a.columns) head.appendChild(cell('th', name));
      for (const row of a.rows) {
        const tr = document.createElement('tr');
        for (const v of row) tr.appendChild(cell('td', v));
        body.appendChild(tr);
      }
      $('dbd-count').textContent = a.rows.length + (a.rows.length === 1 ? ' row' : ' rows');
    } else if (a.affected !== undefined) {
      $('dbd-count').textContent = a.affected + ' rows changed';
    }
  }

  function connect() {
    ws = new WebSocket(url);
    showState();
    ws.onopen = showState;
    ws.onclose = showState;
    ws.onerror = function () {
      $('dbd-error').textContent = 'the WebSocket to ' + url + ' failed';
      showState();
    };
    ws.onmessage = function (ev) {
      let a;
      try {
        a = JSON.parse(ev.data);
      } catch (e) {
        $('dbd-error').textContent = 'not JSON: ' + ev.data;
        return;
      }
      dbd.answers.push(a);
      showAnswer(a);
    };
  }

  function run(ev) {
    ev.preventDefault();
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const label = $('dbd-query').value;
    const params = [];
    if (PARAMS[label] !== null) {
      const v = $('dbd-param').value;
      params.push(/^-?\d+$/.test(v) ? Number(v) : v);
    }
    const msg = JSON.stringify({ id: nextId++, query: label, params: params });
    $('dbd-sent').textContent = msg;
    dbd.sent.push(msg);
    ws.send(msg);
  }

  document.addEventListener('DOMContentLoaded', function () {
    if (window.demoState) window.demoState.dbd = dbd;
    $('dbd-url').textContent = url;
    $('dbd-form').addEventListener('submit', run);
    $('dbd-query').addEventListener('change', showParam);
    showParam();
    connect();
  });
})();
