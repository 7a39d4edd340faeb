// The demo page in headless Chromium, driven as a person would: click the
// buttons, read the text on the page; window.demoState (the page's own
// record) confirms what the text says.  Run by build/browser-test, which
// starts the demo httpd and sets:
//   WS_HTTP_URL, WS_HTTPS_URL  the demo page over http:// and https://
//   WS_NODE_DIR                where playwright-core is installed
//   WS_OUT_DIR                 where screenshots and the browser profile go
//   WS_ACCESS_LOG              the demo httpd's access log
//   CHROMIUM                   the browser (default /usr/bin/chromium)
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run build/browser-test`);
  return v;
};
const require = createRequire(path.join(env('WS_NODE_DIR'), 'package.json'));
const { chromium } = require('playwright-core');

const OUT = env('WS_OUT_DIR');
const WAIT = 10000;

let context;
let profile;

before(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  profile = fs.mkdtempSync(path.join(OUT, 'profile-'));
  // launchPersistentContext is how Playwright takes a --user-data-dir.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 1100, height: 1000 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
      '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
    ],
  });
});

after(async () => {
  if (context) await context.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

// Wait until the text of `locator` matches `re`; fail with what it showed.
async function waitText(locator, re, what) {
  const deadline = Date.now() + WAIT;
  let last = '';
  while (Date.now() < deadline) {
    last = ((await locator.count()) ? await locator.first().innerText() : '').trim();
    if (re.test(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${what}: expected ${re}, the page shows ${JSON.stringify(last)}`);
}

const demoState = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.demoState)));

for (const scheme of ['http', 'https']) {
  describe(`the demo page over ${scheme}://`, { timeout: 90000 }, () => {
    const url = env(scheme === 'http' ? 'WS_HTTP_URL' : 'WS_HTTPS_URL');
    const wsScheme = scheme === 'http' ? 'ws' : 'wss';
    let page;
    const pageErrors = [];

    before(async () => {
      page = await context.newPage();
      page.on('pageerror', (e) => pageErrors.push(String(e)));
    });
    after(async () => {
      if (page) await page.close();
    });

    test('loads and opens the WebSocket: readyState 0 then 1, onopen', async () => {
      const resp = await page.goto(url);
      assert.equal(resp.status(), 200);
      assert.equal(await page.title(), 'mod_ws demo');
      await waitText(page.locator('#state'), /^1 OPEN$/, 'state badge');
      const wsUrl = await page.locator('#ws-url').innerText();
      assert.match(wsUrl, new RegExp(`^${wsScheme}://localhost:\\d+/echo$`));
      assert.deepEqual(await page.locator('#history li').allInnerTexts(),
        ['0 CONNECTING', '1 OPEN']);
      await waitText(page.locator('#log li[data-type="open"]'), /connected to wss?:\/\//, 'open event');
      const st = await demoState(page);
      assert.deepEqual(st.history, [0, 1]);
      assert.equal(st.events[0].type, 'open');
      // WebSocketDeflate on for /echo: Chromium offers permessage-deflate
      // and the server's answer (no context takeover) is what it reports.
      assert.match(st.events[0].extensions,
        /^permessage-deflate; server_no_context_takeover; client_no_context_takeover/);
      assert.equal(await page.locator('#close').isEnabled(), true);
      assert.equal(await page.locator('#connect').isEnabled(), false);
    });

    test('text comes back as text', async () => {
      const text = `héllo über ${scheme} ✓ 🚀`;
      await page.locator('#text-input').fill(text);
      await page.locator('#send-text').click();
      const got = await waitText(page.locator('#log li[data-kind="received"][data-type="text"] .body'),
        /./, 'received text');
      assert.ok(got.startsWith(text), `shows ${JSON.stringify(got)}`);
      const st = await demoState(page);
      assert.deepEqual(st.received.at(-1), { type: 'text', text });
    });

    test('JSON comes back, parsed and shown', async () => {
      const value = { greeting: 'hello', answer: 42, nested: { list: [1, 2, 3], ok: true } };
      await page.locator('#json-input').fill(JSON.stringify(value));
      await page.locator('#send-json').click();
      const got = await waitText(page.locator('#log li[data-kind="received"][data-type="JSON"] .body'),
        /"answer": 42/, 'received JSON');
      assert.match(got, /"list": \[\s*1,\s*2,\s*3\s*\]/);
      assert.match(got, /parsed/);
      const st = await demoState(page);
      assert.equal(st.received.at(-1).type, 'json');
      assert.deepEqual(st.received.at(-1).value, value);
    });

    test('invalid JSON is refused on the page, nothing is sent', async () => {
      const before = (await demoState(page)).sent.length;
      await page.locator('#json-input').fill('{not json');
      await page.locator('#send-json').click();
      await waitText(page.locator('#json-error'), /^not JSON/, 'JSON error');
      assert.equal((await demoState(page)).sent.length, before);
    });

    test('binary comes back as an ArrayBuffer with the same bytes', async () => {
      await page.locator('#binary-size').fill('256');
      await page.locator('#send-binary').click();
      const got = await waitText(page.locator('#log li[data-kind="received"][data-type="binary"] .body'),
        /^256 bytes: /, 'received binary');
      assert.match(got, /ArrayBuffer, same bytes as sent/);
      const st = await demoState(page);
      const sent = st.sent.at(-1);
      const recv = st.received.at(-1);
      assert.equal(sent.type, 'binary');
      assert.equal(recv.type, 'binary');
      assert.equal(recv.dataType, 'ArrayBuffer');
      assert.equal(recv.length, 256);
      assert.equal(recv.hex, sent.hex);
      assert.equal(recv.hex.split(' ').length, 256);
      assert.equal(recv.matchesSent, true);
      assert.match(await page.locator('#counts').innerText(), /^3 sent, 3 received$/);
    });

    test('Close: readyState 2 then 3, onclose with 1000, clean', async () => {
      await page.locator('#close').click();
      await waitText(page.locator('#state'), /^3 CLOSED$/, 'state badge');
      await waitText(page.locator('#close-code'), /^1000$/, 'close code');
      assert.equal(await page.locator('#close-clean').innerText(), 'true');
      assert.deepEqual(await page.locator('#history li').allInnerTexts(),
        ['0 CONNECTING', '1 OPEN', '2 CLOSING', '3 CLOSED']);
      await waitText(page.locator('#log li[data-type="close"] .body'), /^code 1000/, 'close event');
      const st = await demoState(page);
      assert.deepEqual(st.history, [0, 1, 2, 3]);
      assert.equal(st.close.code, 1000);
      assert.equal(st.close.wasClean, true);
      assert.equal(await page.locator('#send-text').isEnabled(), false);
      await page.screenshot({ path: path.join(OUT, `demo-${scheme}.png`), fullPage: true });
    });

    test('Connect opens a new WebSocket that echoes too', async () => {
      await page.locator('#connect').click();
      await waitText(page.locator('#state'), /^1 OPEN$/, 'state badge');
      assert.deepEqual(await page.locator('#history li').allInnerTexts(), ['0 CONNECTING', '1 OPEN']);
      await page.locator('#text-input').fill('again');
      await page.locator('#send-text').click();
      await waitText(page.locator('#log li[data-kind="received"][data-type="text"] .body').last(),
        /^again/, 'second echo');
      const st = await demoState(page);
      assert.equal(st.connections, 2);
      await page.locator('#close').click();
      await waitText(page.locator('#close-code'), /^1000$/, 'close code');
      assert.deepEqual(pageErrors, [], 'no script errors on the page');
    });
  });
}

// The chat on the demo page: two pages (two sockets on the channel "chat",
// in whichever children httpd gives them); a line typed in one shows in
// both, a POST to /publish/chat (curl, as the README says; node's fetch
// when there is no curl) shows in both, a POST to /publish/conn:ID only in
// the page whose id that is.
const chatState = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.chatState)));

function publish(base, channel, body) {
  const url = new URL(`publish/${channel}`, base).toString();
  try {
    const out = execFileSync('curl', ['-sS', '--max-time', '10', '-d', body, url], { encoding: 'utf8' });
    return Promise.resolve(JSON.parse(out));
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  return fetch(url, { method: 'POST', body }).then((r) => r.json());
}

for (const scheme of ['http', 'https']) {
  describe(`the chat over ${scheme}://`, { timeout: 90000 }, () => {
    const url = env(scheme === 'http' ? 'WS_HTTP_URL' : 'WS_HTTPS_URL');
    // the endpoint is Require local; plain http is enough from here
    const publishBase = env('WS_HTTP_URL');
    const pages = [];
    const pageErrors = [];

    before(async () => {
      for (let i = 0; i < 2; i++) {
        const page = await context.newPage();
        page.on('pageerror', (e) => pageErrors.push(String(e)));
        const resp = await page.goto(url);
        assert.equal(resp.status(), 200);
        pages.push(page);
      }
    });
    after(async () => {
      for (const page of pages) await page.close();
    });

    test('each page shows its own socket id from the hello', async () => {
      const ids = [];
      for (const page of pages) {
        await waitText(page.locator('#chat-state'), /^1 OPEN$/, 'chat state badge');
        const id = await waitText(page.locator('#chat-id'), /^\d+-\d+$/, 'chat id');
        await waitText(page.locator('#chat-log li.notice .body').first(), new RegExp(`^you are ${id}$`),
          'hello line');
        const st = await chatState(page);
        assert.equal(st.id, id);
        assert.deepEqual(st.channels, ['chat']);
        assert.equal(st.hello.event, 'hello');
        assert.match(await page.locator('#chat-curl').innerText(),
          /^curl -d 'hello' https?:\/\/localhost:\d+\/publish\/chat$/);
        ids.push(id);
      }
      assert.notEqual(ids[0], ids[1], 'two sockets, two ids');
    });

    test('a line typed in one page appears in both', async () => {
      const text = `hi from page one over ${scheme} ✓`;
      await pages[0].locator('#chat-input').fill(text);
      await pages[0].locator('#chat-send').click();
      for (const page of pages) {
        await waitText(page.locator('#chat-log li.received .body').last(), new RegExp(`^${text}$`),
          'chat line');
      }
      const [a, b] = [await chatState(pages[0]), await chatState(pages[1])];
      assert.deepEqual(a.messages.map((m) => [m.text, m.own]), [[text, true]], 'page one: its own line, once');
      assert.deepEqual(b.messages.map((m) => [m.text, m.own]), [[text, false]], 'page two: the line, once');
    });

    test('a POST to /publish/chat appears in both pages', async () => {
      const text = `posted over http while the pages use ${scheme}`;
      const answer = await publish(publishBase, 'chat', text);
      assert.deepEqual(answer, { channel: 'chat', type: 'text', bytes: Buffer.byteLength(text) });
      for (const page of pages) {
        await waitText(page.locator('#chat-log li.received .body').last(), new RegExp(`^${text}$`),
          'posted line');
        const st = await chatState(page);
        assert.equal(st.messages.filter((m) => m.text === text).length, 1);
      }
    });

    test('a POST to /publish/conn:ID appears in that page only', async () => {
      const id = (await chatState(pages[1])).id;
      const text = `only for ${id}`;
      const answer = await publish(publishBase, `conn:${id}`, text);
      assert.equal(answer.channel, `conn:${id}`);
      await waitText(pages[1].locator('#chat-log li.received .body').last(), new RegExp(`^${text}$`),
        'line for page two');
      // a second line to everybody: page one must get it and not the first
      await publish(publishBase, 'chat', 'to all again');
      await waitText(pages[0].locator('#chat-log li.received .body').last(), /^to all again$/,
        'line for everybody');
      const st = await chatState(pages[0]);
      assert.equal(st.messages.filter((m) => m.text === text).length, 0, 'page one never got it');
      await pages[0].screenshot({ path: path.join(OUT, `chat-${scheme}.png`), fullPage: true });
      assert.deepEqual(pageErrors, [], 'no script errors on the pages');
    });
  });
}

// What the server saw: each WebSocket's access-log line (written when it
// ends).  Over https:// the page came over HTTP/2, and Chromium opened its
// wss:// as a stream of that connection (RFC 8441, H2WebSockets on).
for (const scheme of ['http', 'https']) {
  describe(`forwarding to a CGI backend over ${scheme}://`, { timeout: 60000 }, () => {
    const url = env(scheme === 'http' ? 'WS_HTTP_URL' : 'WS_HTTPS_URL');
    let page;

    before(async () => {
      page = await context.newPage();
      await page.goto(url);
    });
    after(async () => {
      if (page) await page.close();
    });

    test('a message sent from the Forward panel comes back as the backend\'s answer', async () => {
      await waitText(page.locator('#fwd-state'), /^1 OPEN$/, 'forward socket state');
      const text = `through the backend ${scheme} ${Date.now()}`;
      await page.fill('#fwd-input', text);
      await page.click('#fwd-send');
      const shown = await waitText(page.locator('#fwd-log li.in'), /you sent/,
        'the backend answer');
      assert.match(shown, new RegExp(`hello\\.cgi .*you sent “${text}”`));
      assert.ok(shown.includes([...text].reverse().join('')), 'the answer has the text reversed');
      const st = await page.evaluate(() => JSON.parse(JSON.stringify(window.demoForward)));
      const a = st.answers.at(-1);
      assert.equal(a.you_sent, text);
      assert.equal(a.event, 'message');
      assert.equal(a.frame, 'text');
      assert.match(a.socket, /^\d+-\d+$/);
      await page.screenshot({ path: path.join(OUT, `forward-${scheme}.png`) });
    });
  });
}

test('the server logged the WebSockets: HTTP/1.1 for ws://, HTTP/2 for wss://', async () => {
  const log = env('WS_ACCESS_LOG');
  const deadline = Date.now() + WAIT;
  let text = '';
  while (Date.now() < deadline) {
    text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
    if (/"GET \/echo HTTP\/1\.1" 101 /.test(text) && /"GET \/echo HTTP\/2\.0" 101 /.test(text)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(text, /"GET \/echo HTTP\/1\.1" 101 /, 'a ws:// WebSocket over HTTP/1.1');
  assert.match(text, /"GET \/echo HTTP\/2\.0" 101 /, 'a wss:// WebSocket over HTTP/2 (RFC 8441)');
});

// The database panel: runs the demo's prepared queries over its own
// WebSocket to /dbd (WebSocketHandler dbd on the demo's SQLite file) and
// shows the rows as a table.
for (const scheme of ['http', 'https']) {
  describe(`the database panel over ${scheme}://`, { timeout: 60000 }, () => {
    const url = env(scheme === 'http' ? 'WS_HTTP_URL' : 'WS_HTTPS_URL');
    let page;
    const pageErrors = [];

    before(async () => {
      page = await context.newPage();
      page.on('pageerror', (e) => pageErrors.push(String(e)));
      await page.goto(url);
    });
    after(async () => {
      if (page) await page.close();
    });

    const cells = (sel) => page.locator(`#dbd-table ${sel}`).allInnerTexts();

    test('runs "planets" and shows every row', async () => {
      await waitText(page.locator('#dbd-state'), /^1 OPEN$/, 'dbd state badge');
      await page.locator('#dbd-query').selectOption('planets');
      await page.locator('#dbd-run').click();
      await waitText(page.locator('#dbd-count'), /^8 rows$/, 'row count');
      assert.deepEqual(await cells('th'), ['name', 'kind', 'moons', 'radius_km']);
      const names = await page.locator('#dbd-table tbody tr td:first-child').allInnerTexts();
      assert.deepEqual(names, ['Jupiter', 'Saturn', 'Uranus', 'Neptune', 'Earth', 'Venus',
        'Mars', 'Mercury']);
      assert.deepEqual(await page.locator('#dbd-table tbody tr').first().locator('td').allInnerTexts(),
        ['Jupiter', 'gas giant', '95', '69911']);
      const st = await demoState(page);
      assert.deepEqual(st.dbd.answers.at(-1).columns, ['name', 'kind', 'moons', 'radius_km']);
      assert.equal(st.dbd.answers.at(-1).rows.length, 8);
    });

    test('a bound parameter: planets with at least 20 moons', async () => {
      await page.locator('#dbd-query').selectOption('moons');
      await page.locator('#dbd-param').fill('20');
      await page.locator('#dbd-run').click();
      await waitText(page.locator('#dbd-count'), /^3 rows$/, 'row count');
      assert.deepEqual(await cells('th'), ['name', 'moons']);
      assert.deepEqual(await cells('td'), ['Saturn', '146', 'Jupiter', '95', 'Uranus', '28']);
      assert.match(await page.locator('#dbd-sent').innerText(),
        /^\{"id":\d+,"query":"moons","params":\[20\]\}$/);
    });

    test('a parameter is data: a pattern that matches nothing shows no rows, columns kept', async () => {
      await page.locator('#dbd-query').selectOption('named');
      await page.locator('#dbd-param').fill("x' OR '1'='1");
      await page.locator('#dbd-run').click();
      await waitText(page.locator('#dbd-count'), /^0 rows$/, 'row count');
      assert.deepEqual(await cells('th'), ['name', 'kind', 'moons', 'radius_km']);
      assert.equal(await page.locator('#dbd-error').innerText(), '');
      await page.screenshot({ path: path.join(OUT, `demo-dbd-${scheme}.png`), fullPage: true });
      assert.deepEqual(pageErrors, [], 'no script errors on the page');
    });
  });
}
