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

// What the server saw: each WebSocket's access-log line (written when it
// ends).  Over https:// the page came over HTTP/2, and Chromium opened its
// wss:// as a stream of that connection (RFC 8441, H2WebSockets on).
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

// The Forward panel: the page's message goes through WebSocketHandler
// forward to a CGI script of the demo httpd, and the script's answer
// (JSON with the text reversed) shows on the page.
for (const scheme of ['http', 'https']) {
  test(`forward over ${scheme}://: the CGI backend's answer shows on the page`, { timeout: 60000 }, async () => {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    try {
      await page.goto(env(scheme === 'http' ? 'WS_HTTP_URL' : 'WS_HTTPS_URL'));
      await waitText(page.locator('#fwd-state'), /^1 OPEN$/, 'forward state badge');
      await waitText(page.locator('#fwd-log li[data-kind="received"] .body'), /"event": "welcome"/,
        'the backend\'s answer to the open event');
      const text = `héllo ${scheme} backend ✓`;
      await page.locator('#fwd-input').fill(text);
      await page.locator('#fwd-send').click();
      const reversed = [...text].reverse().join('');
      const got = await waitText(page.locator('#fwd-log li[data-kind="received"] .body').last(),
        /"reversed"/, 'the backend\'s answer to the message');
      assert.match(got, /"backend": "forward.cgi"/);
      const st = await page.evaluate(() => JSON.parse(JSON.stringify(window.forwardState)));
      const answer = JSON.parse(st.received.at(-1));
      assert.equal(answer.received, text);
      assert.equal(answer.reversed, reversed);
      assert.equal(answer.frame, 'text');
      assert.match(answer.id, /^\d+-\d+$/);
      await page.locator('#fwd-close').click();
      await waitText(page.locator('#fwd-state'), /^3 CLOSED$/, 'forward state badge');
      assert.deepEqual(errors, [], 'no script errors on the page');
    } finally {
      await page.close();
    }
  });
}
