// page.test.mjs -- drives www/test-websocket.html in a real (headless) Chromium.
//
// Run by tests/integration/browser.sh, which starts the stack and reacts to
// the control lines this script prints. Output protocol, one line each:
//   PASS <name>             an assertion held
//   FAIL <name> -- <why>    an assertion failed
//   CTL stop-wspush         please stop ws-push ws1 now
//   CTL start-wspush        please start ws-push ws1 again on its port
//   CTL kill-wspush         please SIGKILL ws-push ws1 and start it again on its port
//                           (WORK_DIR/killed appears when it is back)
//   CTL auth-on             please restart the stack with authentication on and
//                           write WORK_DIR/auth.json: {api, alice, alice2, bob, carol, bad}
//                           (tokens; alice2 is alice's with a later exp, bad is
//                           signed with another secret), with a quota of 5
//                           messages a minute per user
//   CTL kill-wspush-auth    as kill-wspush, with authentication on (WORK_DIR/killed-auth)
//   NOTE <text>             worth knowing, not a failure (browser.sh shows it)
//   END                     the script ran to its end (exit status 0 = no FAIL)
// Environment: API (http://127.0.0.1:PORT), PROFILE_DIR (fresh empty dir for
// --user-data-dir), WORK_DIR (scratch files), SCREENSHOT (PNG to write),
// SCREENSHOT_AUTH (PNG of a page with authentication on),
// CHROMIUM (default /usr/bin/chromium), TOTAL_TIMEOUT_MS (default 150000),
// STEP_TIMES=1: a line "TIME <ms since the epoch> <step>" before each step.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const API = process.env.API;
const PROFILE_DIR = process.env.PROFILE_DIR;
const WORK_DIR = process.env.WORK_DIR || PROFILE_DIR + '.work';
const SCREENSHOT = process.env.SCREENSHOT;
const SCREENSHOT_AUTH = process.env.SCREENSHOT_AUTH || SCREENSHOT.replace(/\.png$/, '') + '-auth.png';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOTAL_TIMEOUT_MS = Number(process.env.TOTAL_TIMEOUT_MS || 150000);
const STEP_MS = 15000;                 // default wait for one thing to happen on the page
const STATES = ['connecting', 'connected', 'reconnecting', 'disconnected'];

let failures = 0;
let context = null;
let page = null;

const oneLine = (s) => String(s).replace(/\s+/g, ' ').slice(0, 600);
function pass(name) { console.log(`PASS ${name}`); }
function fail(name, why) { failures++; console.log(`FAIL ${name} -- ${oneLine(why)}`); }
function expect(name, ok, why) { if (ok) pass(name); else fail(name, why); return ok; }
function ctl(cmd) { console.log(`CTL ${cmd}`); }

// Last-resort cleanup: any process still running with our own, unique profile
// directory on its command line is our browser (or one of its children).
function killOurBrowser() {
    let mine = [];
    try {
        for (const d of fs.readdirSync('/proc')) {
            if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
            let cmd;
            try { cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8'); } catch { continue; }
            if (cmd.includes(`--user-data-dir=${PROFILE_DIR}`)) mine.push(Number(d));
        }
    } catch { /* no /proc */ }
    for (const pid of mine) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
}

async function shutdown(code) {
    if (context) {
        const c = context; context = null;
        await Promise.race([c.close().catch(() => {}), new Promise((r) => setTimeout(r, 10000))]);
    }
    killOurBrowser();
    console.log('END');
    process.exit(code);
}

const overall = setTimeout(() => {
    fail('driver finishes in time', `still running after ${TOTAL_TIMEOUT_MS} ms`);
    shutdown(2);
}, TOTAL_TIMEOUT_MS);
process.on('unhandledRejection', (e) => { fail('driver has no unhandled errors', e && e.stack || e); shutdown(2); });

// ---- a real PNG, made here: a 48x48 RGB gradient ---------------------------

function crc32(buf) {
    let c, crc = 0xffffffff;
    for (let n = 0; n < buf.length; n++) {
        c = (crc ^ buf[n]) & 0xff;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        crc = (crc >>> 8) ^ c;
    }
    return (crc ^ 0xffffffff) >>> 0;
}
function pngChunk(type, data) {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
}
function makePng(w, h) {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4);
    ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;   // 8-bit RGB
    const raw = Buffer.alloc(h * (1 + w * 3));
    for (let y = 0; y < h; y++) {
        const row = y * (1 + w * 3);
        raw[row] = 0;                                                       // filter: none
        for (let x = 0; x < w; x++) {
            raw[row + 1 + x * 3] = Math.round(255 * x / (w - 1));
            raw[row + 2 + x * 3] = Math.round(255 * y / (h - 1));
            raw[row + 3 + x * 3] = 160;
        }
    }
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        pngChunk('IHDR', ihdr), pngChunk('IDAT', zlib.deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0)),
    ]);
}

// ---- page helpers --------------------------------------------------------------

const stateText = (pg = page) => pg.textContent('#state');

async function waitState(want, ms = STEP_MS, pg = page) {
    await pg.waitForFunction((w) => document.getElementById('state').textContent === w, want,
                               { timeout: ms, polling: 50 });
}

const answerIds = (pg = page) => pg.$$eval('.answer[data-id]', (els) => els.map((e) => e.getAttribute('data-id')));

// waits for a bubble with an id not in `before`; returns its id
async function newAnswerId(before, ms = STEP_MS, pg = page) {
    const h = await pg.waitForFunction((old) => {
        for (const e of document.querySelectorAll('.answer[data-id]'))
            if (!old.includes(e.getAttribute('data-id'))) return e.getAttribute('data-id');
        return null;
    }, before, { timeout: ms, polling: 50 });
    return h.jsonValue();
}

const bubble = (id) => `.answer[data-id="${id.replace(/"/g, '\\"')}"]`;

// waits for bubble `id` to end (class done, error or cancelled); returns what it shows
async function finished(id, ms = STEP_MS, pg = page) {
    await pg.waitForFunction((i) => {
        const e = document.querySelector(`.answer[data-id="${CSS.escape(i)}"]`);
        return e && ['done', 'error', 'cancelled'].some((c) => e.classList.contains(c));
    }, id, { timeout: ms, polling: 50 });
    return pg.$eval(bubble(id), (e) => ({
        done: e.classList.contains('done'), error: e.classList.contains('error'),
        cancelled: e.classList.contains('cancelled'),
        body: e.querySelector('.body').textContent, err: e.querySelector('.err').textContent,
    }));
}

// what the AI stand-in answers to a question with @@tokens=n
const tokens = (n) => Array.from({ length: n }, (_, i) => `tok${i}`).join(' ');

// waits until bubble `id` shows at least n of the stand-in's tokens
async function showsTokens(id, n, ms = STEP_MS, pg = page) {
    await pg.waitForFunction(([i, k]) => {
        const e = document.querySelector(`.answer[data-id="${CSS.escape(i)}"] .body`);
        return e && (e.textContent.match(/tok\d+ /g) || []).length >= k;
    }, [id, n], { timeout: ms, polling: 50 });
}

const logLines = (pg = page) => pg.$$eval('#log li', (lis) => lis.map((l) => l.textContent));

// name: step; fn returns nothing (assertions inside) or throws (a FAIL for `name`)
async function step(name, fn) {
    if (process.env.STEP_TIMES) console.log(`TIME ${Date.now()} ${name}`);
    try { await fn(); return true; } catch (e) { fail(name, e && e.message || e); return false; }
}

// New chat: the next message starts a new conversation
async function newChat(pg = page) {
    await pg.click('#new-chat');
    await pg.waitForFunction(() => document.getElementById('conversation').getAttribute('data-id') === '',
                             null, { timeout: STEP_MS, polling: 50 });
}
const conversationOf = (pg = page) => pg.getAttribute('#conversation', 'data-id');

// sends `text` with button `button` (in a new conversation, unless `keep`:
// then in the page's current one); checks the answer equals `want` (string
// or RegExp); returns the job id of the answer (null when it failed)
async function askAndCheck(name, button, text, want, pg = page, keep = false) {
    let id = null;
    await step(name, async () => {
        await front(pg);
        if (!keep) await newChat(pg);
        const before = await answerIds(pg);
        await pg.fill('#text', text);
        await pg.click(button);
        id = await newAnswerId(before, STEP_MS, pg);
        const a = await finished(id, STEP_MS, pg);
        const ok = a.done && !a.error && (want instanceof RegExp ? want.test(a.body) : a.body === want);
        expect(name, ok, `bubble ${id}: done=${a.done} error=${a.error} [${a.body}] ${a.err} -- wanted ${want}`);
    });
    return id;
}

// ---- the test ---------------------------------------------------------------------

async function main() {
    if (!API || !PROFILE_DIR || !SCREENSHOT) throw new Error('API, PROFILE_DIR and SCREENSHOT must be set');
    fs.mkdirSync(WORK_DIR, { recursive: true });
    const pngPath = path.join(WORK_DIR, 'gradient.png');
    const png = makePng(48, 48);
    fs.writeFileSync(pngPath, png);
    const txtPath = path.join(WORK_DIR, 'not-an-image.png');
    fs.writeFileSync(txtPath, 'this is plain text, not a picture\n');

    context = await chromium.launchPersistentContext(PROFILE_DIR, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        viewport: { width: 1280, height: 900 },
        timeout: 30000,
    });
    page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(STEP_MS);

    const pageErrors = [];
    const consoleErrors = [];
    let outage = false;      // while ws-push is down, failed handshakes are expected
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
        if (m.type() !== 'error') return;
        // Chromium itself reports each failed WebSocket handshake
        if (outage && /^WebSocket connection to '.*' failed/.test(m.text())) return;
        consoleErrors.push(m.text());
    });

    // 1. load and connect
    const loaded = await step('page loads', async () => {
        const res = await page.goto(`${API}/test-websocket.html`, { waitUntil: 'load' });
        expect('page loads', res && res.status() === 200, `HTTP ${res && res.status()}`);
    });
    if (!loaded) return;
    // record every state the page shows, to check it only ever shows the four names
    await page.evaluate(() => {
        const s = document.getElementById('state');
        window.__states = [s.textContent];
        new MutationObserver(() => window.__states.push(s.textContent))
            .observe(s, { childList: true, characterData: true, subtree: true });
    });
    const connected = await step('page connects to /ws', async () => {
        await waitState('connected');
        pass('page connects to /ws');
    });
    if (!connected) return;
    await step('without a token the page shows no user, no own count, no notice', async () => {
        await page.waitForTimeout(300);       // the first /api/status has answered
        const shown = [];
        for (const sel of ['#user-pill', '#mine-pill', '#notice'])
            if (await page.isVisible(sel)) shown.push(sel);
        expect('without a token the page shows no user, no own count, no notice', shown.length === 0,
               `visible: ${shown.join(' ')}`);
    });

    // 2. text over the socket, answered to this socket, chunk by chunk
    // (@@delay spaces the stand-in's tokens: the worker sends what came in one
    // turn of its loop as one frame, so on a busy machine fast tokens merge)
    const firstId = await askAndCheck('text over WebSocket is answered', '#send', 'hello from the browser @@delay=40',
                                      'Echo: hello from the browser');
    await step('answer arrived in several chunks, logged with timestamps', async () => {
        const lines = await page.$$eval('#log li', (lis) => lis.map((l) => l.textContent));
        const chunks = lines.filter((l) => /^\d\d:\d\d:\d\d\.\d{3} ← text id=(\S+) seq=\d+ /.test(l) &&
                                           l.includes(`id=${firstId} `));
        expect('answer arrived in several chunks, logged with timestamps', firstId && chunks.length >= 2,
               `${chunks.length} timestamped chunk lines for ${firstId} in the log`);
    });

    // 3. an image with a question over the socket
    await step('image preview shows the chosen PNG', async () => {
        await page.setInputFiles('#image', pngPath);
        await page.waitForFunction(() => {
            const i = document.getElementById('preview');
            return !i.hidden && i.complete && i.naturalWidth > 0;
        }, null, { timeout: STEP_MS });
        const w = await page.$eval('#preview', (i) => i.naturalWidth);
        expect('image preview shows the chosen PNG', w === 48, `naturalWidth ${w}`);
    });
    await askAndCheck('image over WebSocket is answered', '#send-image', 'what colours are these?',
                      new RegExp(`^I see a PNG image of ${png.length} bytes\\. You asked: what colours are these\\?$`));

    // 4. the HTTP paths: answers come back as broadcasts on the socket
    await askAndCheck('HTTP POST /api/message answer is broadcast', '#post-http', 'broadcast via http',
                      'Echo: broadcast via http');
    await askAndCheck('HTTP POST /api/image answer is broadcast', '#post-image-http', 'and over http?',
                      new RegExp(`^I see a PNG image of ${png.length} bytes\\. You asked: and over http\\?$`));
    await step('HTTP responses are logged', async () => {
        const log = await page.textContent('#log');
        expect('HTTP responses are logged', /HTTP 200.*消息发送成功/.test(log) && /HTTP 200.*图片发送成功/.test(log),
               'no "HTTP 200 ... 消息发送成功/图片发送成功" in the log');
    });

    // 4b. conversations: the page keeps the conversation id (from the queued
    // frame, or the HTTP 200 body) and names it in every message; the
    // stand-in's echo says which earlier turns the worker sent it. New chat
    // starts a fresh one. A done answer shows its token usage (the stand-in:
    // prompt = the question's words + 1, completion = the answer's words).
    const history = (n, prev) => ` [history: ${n} earlier turn(s), 0 image(s); previous question: ${prev}]`;
    const firstTurn = await askAndCheck('a first message starts a conversation', '#send', 'first turn', 'Echo: first turn');
    let conv1 = '';
    await step('the page keeps the conversation the queued frame names', async () => {
        conv1 = await conversationOf();
        const queued = (await logLines()).find((l) => l.includes(`← queued id=${firstTurn} `)) || '';
        expect('the page keeps the conversation the queued frame names',
               /^[0-9a-f]{32}$/.test(conv1) && queued.includes(`conversation=${conv1}`), `[${conv1}] [${queued}]`);
    });
    await askAndCheck('a second message continues the conversation (the model got the first turn)', '#send',
                      'second turn', 'Echo: second turn' + history(1, 'first turn'), page, true);
    await askAndCheck('... over HTTP too (the POST names it)', '#post-http',
                      'third turn', 'Echo: third turn' + history(2, 'second turn'), page, true);
    await step('New chat starts a new conversation', async () => {
        await newChat();
        const shown = await page.textContent('#conversation');
        expect('New chat starts a new conversation', /new/.test(shown), `shows [${shown}]`);
    });
    await askAndCheck('... whose first answer has no history (asked over HTTP)', '#post-http', 'fresh start',
                      'Echo: fresh start', page, true);
    await step('... the HTTP 200 body gives the page its id', async () => {
        const c = await conversationOf();
        expect('... the HTTP 200 body gives the page its id', /^[0-9a-f]{32}$/.test(c) && c !== conv1, `[${c}] (before: ${conv1})`);
    });
    await askAndCheck('... and the next message continues it', '#send', 'fresh again',
                      'Echo: fresh again' + history(1, 'fresh start'), page, true);
    await step('a done answer shows its token usage', async () => {
        const u = await page.textContent(`${bubble(firstTurn)} .usage`);
        expect('a done answer shows its token usage (prompt and completion tokens of the done frame)',
               /prompt 3 · .*completion 3$/.test(u), `[${u}]`);
    });

    // 5. a rejected message shows as an error bubble
    await step('a bad image shows an error', async () => {
        const errorsBefore = await page.$$eval('.answer.error', (e) => e.length);
        await page.setInputFiles('#image', txtPath);
        await page.fill('#text', '');
        await page.click('#send-image');
        await page.waitForFunction((n) => document.querySelectorAll('.answer.error').length > n, errorsBefore);
        const msg = await page.$$eval('.answer.error .err', (e) => e[e.length - 1].textContent);
        expect('a bad image shows an error', /不支持的图片格式/.test(msg), `error text [${msg}]`);
        await page.setInputFiles('#image', pngPath);    // back to the good image for the screenshot
    });

    // 6. connection count from /api/status
    await step('connection count shows at least 1', async () => {
        await page.waitForFunction(() => Number(document.getElementById('count').textContent) >= 1,
                                   null, { timeout: 10000 });
        pass('connection count shows at least 1');
    });

    // 7. the user can disconnect and connect again
    await step('disconnect button closes the socket', async () => {
        await page.click('#toggle');
        await waitState('disconnected', 5000);
        await page.waitForTimeout(1500);       // and it stays closed: no automatic reconnect
        const st = await stateText();
        const sendOff = await page.$eval('#send', (b) => b.disabled);
        expect('disconnect button closes the socket', st === 'disconnected' && sendOff,
               `state ${st}, send disabled ${sendOff}`);
    });
    await step('connect button opens it again', async () => {
        await page.click('#toggle');
        await waitState('connected', 10000);
        pass('connect button opens it again');
    });

    // 8. ws-push goes away: the page reconnects by itself when it is back
    outage = true;
    ctl('stop-wspush');
    const dropped = await step('page shows reconnecting when ws-push stops', async () => {
        await waitState('reconnecting', 20000);
        pass('page shows reconnecting when ws-push stops');
    });
    await step('reconnect countdown is shown', async () => {
        await page.waitForFunction(() => /attempt \d+/.test(document.getElementById('reconnect-info').textContent),
                                   null, { timeout: 5000 });
        // let it fail at least once more against the stopped daemon
        await page.waitForFunction(() => /attempt [2-9]/.test(document.getElementById('reconnect-info').textContent),
                                   null, { timeout: 10000 });
        expect('reconnect countdown is shown', (await stateText()) === 'reconnecting', `state ${await stateText()}`);
    });
    ctl('start-wspush');
    if (dropped) {
        const back = await step('page reconnects when ws-push is back', async () => {
            await waitState('connected', 30000);
            outage = false;
            pass('page reconnects when ws-push is back');
        });
        if (back) {
            await askAndCheck('text after reconnecting is answered', '#send', 'are you back?', 'Echo: are you back?');
            await step('connection count is at least 1 again', async () => {
                await page.waitForFunction(() => Number(document.getElementById('count').textContent) >= 1,
                                           null, { timeout: 10000 });
                pass('connection count is at least 1 again');
            });
        }
    }

    // 9. Stop: the answer ends as cancelled, with a prefix of the whole answer
    await step('Stop ends a streaming answer as cancelled', async () => {
        const n = 300;
        const before = await answerIds();
        await page.fill('#text', `please stop me @@tokens=${n} @@delay=40`);
        await page.click('#send');
        const id = await newAnswerId(before);
        await showsTokens(id, 3);
        const stop = `${bubble(id)} button.stop`;
        expect('a streaming answer has a Stop button', await page.isVisible(stop), 'no visible Stop button');
        await page.click(stop);
        const a = await finished(id, 20000);
        expect('Stop ends a streaming answer as cancelled', a.cancelled && !a.done && !a.error,
               `done=${a.done} error=${a.error} cancelled=${a.cancelled} ${a.err}`);
        const full = tokens(n);
        expect('a cancelled answer shows a prefix of the whole answer',
               /^tok0 tok1 tok2 /.test(a.body) && full.startsWith(a.body) && a.body.length < full.length,
               `[${a.body.slice(0, 80)}…] (${a.body.length} of ${full.length} chars)`);
        expect('the Stop button goes away when the answer ends', (await page.$(stop)) === null, 'still there');
        const lines = await logLines();
        expect('the cancel frame and the cancelled frame are logged',
               lines.some((l) => l.includes(`→ cancel id=${id}`)) &&
               lines.some((l) => l.includes(`← cancelled id=${id} seq=`)), 'no "→ cancel" / "← cancelled" lines');
        await page.waitForTimeout(1500);     // the model went on for another 10 s had it not been stopped
        const later = await page.$eval(`${bubble(id)} .body`, (e) => e.textContent);
        expect('a cancelled answer stops growing', later === a.body,
               `${a.body.length} chars when cancelled, ${later.length} chars later`);
    });
    await step('a finished answer has no Stop button', async () => {
        const done = await page.$$eval('.answer.done', (es) => es.length);
        const withStop = await page.$$eval('.answer.done button.stop', (es) => es.length);
        expect('a finished answer has no Stop button', done > 0 && withStop === 0,
               `${done} finished answers, ${withStop} with a Stop button`);
    });

    // 10. ws-push is killed while two answers stream (the socket's own, and an
    // HTTP broadcast): the page resumes both and shows each whole, once
    outage = true;
    await step('answers streaming while ws-push is killed are resumed', async () => {
        const n = 80;
        const full = tokens(n);
        let before = await answerIds();
        await newChat();     // two conversations: a conversation's answers come one after the other
        await page.fill('#text', `survive a crash @@tokens=${n} @@delay=50`);
        await page.click('#send');
        const own = await newAnswerId(before);
        before = await answerIds();
        await newChat();
        await page.fill('#text', `survive a crash, broadcast @@tokens=${n} @@delay=50`);
        await page.click('#post-http');
        const broadcast = await newAnswerId(before);
        await showsTokens(own, 5);
        await showsTokens(broadcast, 5);
        const seen = await page.evaluate(() => window.__states.length);
        ctl('kill-wspush');
        await page.waitForFunction((k) => {
            const s = window.__states.slice(k);
            return s.includes('reconnecting') && s[s.length - 1] === 'connected';
        }, seen, { timeout: 30000, polling: 50 });
        outage = false;
        pass('page reconnects after ws-push is killed');
        const lines = await logLines();
        for (const [what, id] of [['own answer', own], ['broadcast answer', broadcast]]) {
            const a = await finished(id, 30000);
            expect(`${what}: whole and ended after the kill`, a.done && !a.error && a.body === full,
                   `done=${a.done} error=${a.error} cancelled=${a.cancelled} [${a.body}] ${a.err} -- wanted [${full}]`);
            // it was resumed part way: the page had some of it, not all of it
            const resume = lines.map((l) => new RegExp(`→ resume id=${id} after=(-?\\d+)$`).exec(l)).find(Boolean);
            expect(`${what}: resumed part way through`, resume && Number(resume[1]) >= 4 && Number(resume[1]) < n,
                   resume ? `after=${resume[1]}` : 'no "→ resume" line in the log');
        }
        // A broadcast frame can reach the new connection before its resume
        // does, and then come again with the resumed ones: the page shows it
        // once (checked above). Not a failure of the page; noted for the log.
        const dups = (await logLines()).filter((l) => / ← dup /.test(l));
        for (const d of dups) console.log(`NOTE repeated frame ignored by the page: ${d}`);
    });
    outage = false;

    // 11. what the page showed along the way
    await step('state only ever shows the four names', async () => {
        const seen = await page.evaluate(() => window.__states);
        const bad = seen.filter((s) => !STATES.includes(s));
        expect('state only ever shows the four names', bad.length === 0, `saw ${JSON.stringify(bad)}`);
        const path_ = seen.join(' ');
        // (the observer starts after load, by when the first connect may be over)
        expect('state went through all four, in order',
               /^(connecting )?connected.* disconnected (connecting )?connected.* reconnecting.* connected$/.test(path_),
               `sequence ${path_}`);
    });
    await page.waitForTimeout(300);
    await step('screenshot saved', async () => {
        fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
        await page.screenshot({ path: SCREENSHOT, fullPage: true });
        expect('screenshot saved', fs.statSync(SCREENSHOT).size > 1000, 'empty file');
    });
    expect('no uncaught page errors', pageErrors.length === 0, pageErrors.join(' | '));
    expect('no console errors (besides failed handshakes while ws-push is down)', consoleErrors.length === 0,
           consoleErrors.join(' | '));

    await page.close();      // its server goes away: authentication comes on, on another port
    page = null;
    const t0 = Date.now();
    await authScenario();
    console.log(`NOTE the part with authentication took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

// ---- with authentication on ------------------------------------------------------

async function waitFile(file, ms) {
    const end = Date.now() + ms;
    while (!fs.existsSync(file)) {
        if (Date.now() > end) throw new Error(`no ${file} after ${ms} ms`);
        await new Promise((r) => setTimeout(r, 100));
    }
    return fs.readFileSync(file, 'utf8');
}

// a tab of its own (its own sessionStorage), with its errors recorded; `w`
// is the page's state: w.outage while failed handshakes are expected,
// w.httpErrors the statuses expected (Chromium logs each such response as a
// console error)
// Chromium gives a tab that is not in front an animation frame about every
// second, and Playwright's click waits for frames: a tab is brought to the
// front before it is used
let frontPage = null;
async function front(pg) {
    if (pg === frontPage) return;
    await pg.bringToFront();
    frontPage = pg;
}

const tabs = [];
async function openTab(name, url, httpErrors = []) {
    const pg = await context.newPage();
    frontPage = pg;
    pg.setDefaultTimeout(STEP_MS);
    const w = { name, pg, outage: false, httpErrors, errors: [] };
    tabs.push(w);
    pg.on('pageerror', (e) => w.errors.push(`page error: ${e.message}`));
    pg.on('console', (m) => {
        if (m.type() !== 'error') return;
        if (w.outage && /^WebSocket connection to '.*' failed/.test(m.text())) return;
        const st = /status of (\d+)/.exec(m.text());
        if (st && w.httpErrors.includes(Number(st[1]))) return;
        w.errors.push(m.text());
    });
    await pg.goto(url, { waitUntil: 'load' });
    return w;
}

const userShown = (pg) => pg.textContent('#user');

async function waitUser(pg, user, ms = STEP_MS) {
    await pg.waitForFunction((u) => document.getElementById('user').textContent === u &&
                                    document.getElementById('state').textContent === 'connected',
                             user, { timeout: ms, polling: 50 });
}

// how many of the page's log lines match re
const countLog = async (pg, re) => (await logLines(pg)).filter((l) => re.test(l)).length;

async function authScenario() {
    ctl('auth-on');
    let auth;
    const on = await step('authentication comes on (stack restarted with AUTH_JWT_SECRET)', async () => {
        auth = JSON.parse(await waitFile(path.join(WORK_DIR, 'auth.json'), 30000));
        pass('authentication comes on (stack restarted with AUTH_JWT_SECRET)');
    });
    if (!on) return;
    const pageUrl = (t) => `${auth.api}/test-websocket.html?token=${encodeURIComponent(t)}`;

    // 1. alice opens the page with ?token=
    let a1, a2, bob, bad;
    const alice = await step('a page with ?token= shows its user', async () => {
        a1 = await openTab('alice-1', pageUrl(auth.alice));
        await waitUser(a1.pg, 'alice');
        const exp = await a1.pg.textContent('#user-exp');
        expect('a page with ?token= shows its user', /expires \d\d:\d\d:\d\d \(\d+ min\)/.test(exp),
               `expiry shown as [${exp}]`);
    });
    if (!alice) return;
    expect('the token is not left in the address bar', !/token/.test(a1.pg.url()), a1.pg.url());
    await step('the token goes in the first frame, not in the URL, and not into the log', async () => {
        const lines = await logLines(a1.pg);
        const connect = lines.find((l) => / connect ws:/.test(l)) || '';
        const firstOut = lines.find((l) => / → /.test(l)) || '';
        expect('the token goes in the first frame, not in the URL, and not into the log',
               !/token/.test(connect) && / → auth /.test(firstOut) && !(await a1.pg.textContent('#log')).includes(auth.alice),
               `connect line [${connect}], first frame out [${firstOut}]`);
    });

    // 2. alice's second tab, bob, and a bad token
    await step('a second tab of alice and a tab of bob authenticate', async () => {
        [a2, bob] = await Promise.all([openTab('alice-2', pageUrl(auth.alice)), openTab('bob', pageUrl(auth.bob))]);
        await Promise.all([waitUser(a2.pg, 'alice'), waitUser(bob.pg, 'bob')]);
        pass('a second tab of alice and a tab of bob authenticate');
    });
    await step('a bad token shows the 401 and stops reconnecting', async () => {
        bad = await openTab('bad', pageUrl(auth.bad), [401]);
        await bad.pg.waitForFunction(() => /401/.test(document.getElementById('notice').textContent),
                                     null, { timeout: STEP_MS, polling: 50 });
        await waitState('disconnected', STEP_MS, bad.pg);
        const shown = await bad.pg.textContent('#notice');
        expect('a bad token shows the 401', /令牌无效/.test(shown) && !(await bad.pg.isHidden('#notice')),
               `notice [${shown}]`);
        expect('a bad token: the page says it is not authenticated', /未认证/.test(await userShown(bad.pg)),
               `user [${await userShown(bad.pg)}]`);
        await bad.pg.waitForTimeout(1000);    // the first reconnect would come after ~0.5 s
        const connects = await countLog(bad.pg, / connect ws:/);
        expect('a bad token shows the 401 and stops reconnecting',
               connects === 1 && (await stateText(bad.pg)) === 'disconnected',
               `${connects} connects, state ${await stateText(bad.pg)}`);
    });
    if (!a2 || !bob || !bad) return;

    // 3. alice asks in tab 1: the answer streams there and in tab 2, not at bob's
    const id1 = await askAndCheck('alice asks over the socket, the answer streams in', '#send',
                                  'hello from alice @@tokens=8 @@delay=50', tokens(8), a1.pg);
    if (id1) {
        await step('the answer streamed in several chunks', async () => {
            const n = await countLog(a1.pg, new RegExp(`← text id=${id1} seq=`));
            expect('the answer streamed in several chunks', n >= 2, `${n} chunks`);
        });
        await step("alice's second tab shows the answer asked in the first", async () => {
            const a = await finished(id1, STEP_MS, a2.pg);
            expect("alice's second tab shows the answer asked in the first",
                   a.done && a.body === tokens(8), `done=${a.done} [${a.body}] ${a.err}`);
            expect('queued goes only to the asking tab', (await countLog(a2.pg, new RegExp(`← queued id=${id1}`))) === 0,
                   'the second tab got a queued frame');
        });
    }

    // 4. alice asks over HTTP: from outside the browser, and from tab 2's button
    await step("an HTTP POST with alice's token shows in both of alice's tabs", async () => {
        const res = await fetch(`${auth.api}/api/message`, {
            method: 'POST', body: JSON.stringify({ content: 'over http as alice' }),
            headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${auth.alice}` },
        });
        const j = await res.json();
        if (res.status !== 200 || !j.id) throw new Error(`HTTP ${res.status} ${JSON.stringify(j)}`);
        for (const w of [a1, a2]) {
            const a = await finished(j.id, STEP_MS, w.pg);
            expect(`an HTTP POST with alice's token shows in ${w.name}`, a.done && a.body === 'Echo: over http as alice',
                   `done=${a.done} [${a.body}] ${a.err}`);
        }
    });
    const id2 = await askAndCheck("the page's HTTP POST carries the token", '#post-http', 'from the button',
                                  'Echo: from the button', a2.pg);
    if (id2) {
        await step("the first tab shows the second tab's HTTP answer", async () => {
            const a = await finished(id2, STEP_MS, a1.pg);
            expect("the first tab shows the second tab's HTTP answer", a.done && a.body === 'Echo: from the button',
                   `done=${a.done} [${a.body}]`);
        });
    }
    await step("bob's page and the bad token's page show none of alice's answers", async () => {
        await bob.pg.waitForTimeout(300);
        const bobs = await answerIds(bob.pg), bads = await answerIds(bad.pg);
        expect("bob's page and the bad token's page show none of alice's answers",
               bobs.length === 0 && bads.length === 0, `bob: ${bobs}, bad: ${bads}`);
    });
    await askAndCheck("bob's own question is answered to him", '#send', 'I am bob', 'Echo: I am bob', bob.pg);

    // 5. the counts, and HTTP with a bad token
    await step("the page shows the user's connection count", async () => {
        await a1.pg.waitForFunction(() => document.getElementById('mine').textContent === '2', null, { timeout: 10000 });
        expect('the own count is visible with a token', await a1.pg.isVisible('#mine-pill'), 'hidden');
        await bob.pg.waitForFunction(() => document.getElementById('mine').textContent === '1', null, { timeout: 10000 });
        pass("the page shows the user's connection count");
    });
    await step('an HTTP POST with a bad token shows the 401 message', async () => {
        await front(bad.pg);
        await bad.pg.fill('#text', 'may I?');
        await bad.pg.click('#post-http');
        await bad.pg.waitForSelector('.answer.error', { timeout: STEP_MS });
        const err = await bad.pg.textContent('.answer.error .err');
        expect('an HTTP POST with a bad token shows the 401 message', /HTTP 401: 令牌无效/.test(err), `error [${err}]`);
        expect('nothing was answered to the bad token', (await bad.pg.$$('.answer.done')).length === 0, 'an answer');
    });

    // 6. no token while authentication is on: the page says so, a message is refused
    let none;
    await step('without a token the page shows the 401 of /api/status', async () => {
        none = await openTab('no-token', `${auth.api}/test-websocket.html`, [401]);
        await none.pg.waitForFunction(() => /HTTP 401 \/api\/status: 需要令牌/.test(document.getElementById('notice').textContent),
                                      null, { timeout: STEP_MS, polling: 50 });
        pass('without a token the page shows the 401 of /api/status');
    });
    if (none) {
        await step('without a token a message is refused and the page stops reconnecting', async () => {
            await waitState('connected', STEP_MS, none.pg);
            await front(none.pg);
            await none.pg.fill('#text', 'no token, no answer');
            await none.pg.click('#send');
            await none.pg.waitForSelector('.answer.error', { timeout: STEP_MS });
            const err = await none.pg.textContent('.answer.error .err');
            await waitState('disconnected', STEP_MS, none.pg);
            expect('without a token a message is refused and the page stops reconnecting',
                   /请先认证/.test(err) && /不再自动重连/.test(await none.pg.textContent('#reconnect-info')),
                   `error [${err}], info [${await none.pg.textContent('#reconnect-info')}]`);
        });
    }

    // 7. a quota: 5 messages a minute per user; the 6th is refused (429)
    let carol;
    await step('a quota refuses a message over the socket (429)', async () => {
        carol = await openTab('carol', pageUrl(auth.carol), [429]);
        await waitUser(carol.pg, 'carol');
        await front(carol.pg);
        for (let i = 0; i < 5; i++) {
            await carol.pg.fill('#text', `carol ${i}`);
            await carol.pg.click('#send');
        }
        await carol.pg.waitForFunction(() => document.querySelectorAll('.answer.done').length === 5,
                                       null, { timeout: STEP_MS, polling: 50 });
        await carol.pg.fill('#text', 'one too many');
        await carol.pg.click('#send');
        await carol.pg.waitForSelector('.answer.error', { timeout: STEP_MS });
        const err = await carol.pg.textContent('.answer.error .err');
        const note = await carol.pg.textContent('#notice');
        expect('a quota refuses a message over the socket (429)', /发送太频繁/.test(err) && /429/.test(note),
               `error [${err}], notice [${note}]`);
    });
    if (carol) {
        await step('a quota refuses an HTTP message: 429 with Retry-After', async () => {
            await front(carol.pg);
            await carol.pg.fill('#text', 'one too many over http');
            await carol.pg.click('#post-http');
            await carol.pg.waitForFunction(() => document.querySelectorAll('.answer.error').length === 2,
                                           null, { timeout: STEP_MS, polling: 50 });
            const err = await carol.pg.$$eval('.answer.error .err', (e) => e[1].textContent);
            expect('a quota refuses an HTTP message: 429 with Retry-After',
                   /^HTTP 429: 发送太频繁.*retry after \d+ s$/.test(err), `error [${err}]`);
        });
    }

    // 8. a fresh token on the live socket: authenticated again, no reconnect
    await step('Update token sends a fresh token on the live socket', async () => {
        const before = await a1.pg.textContent('#user-exp');
        await front(a1.pg);
        await a1.pg.fill('#token', auth.alice2);
        await a1.pg.click('#apply-token');
        await a1.pg.waitForFunction(() => /\(1\d\d min\)/.test(document.getElementById('user-exp').textContent),
                                    null, { timeout: STEP_MS, polling: 50 });
        const auths = await countLog(a1.pg, / → auth /), opens = await countLog(a1.pg, / open /);
        expect('Update token sends a fresh token on the live socket',
               auths === 2 && opens === 1 && (await stateText(a1.pg)) === 'connected' && (await userShown(a1.pg)) === 'alice',
               `${auths} auth frames, ${opens} opens, expiry [${before}] -> [${await a1.pg.textContent('#user-exp')}]`);
    });

    // 9. ws-push killed while alice's answer streams: both tabs authenticate
    // again before they resume, and show it whole
    await step('with a token, an answer streaming while ws-push is killed is resumed', async () => {
        const n = 40;
        const before = await answerIds(a1.pg);
        await front(a1.pg);
        await a1.pg.fill('#text', `survive with a token @@tokens=${n} @@delay=40`);
        await a1.pg.click('#send');
        const id = await newAnswerId(before, STEP_MS, a1.pg);
        await showsTokens(id, 5, STEP_MS, a1.pg);
        for (const w of tabs) w.outage = true;
        const killedFile = path.join(WORK_DIR, 'killed-auth');
        ctl('kill-wspush-auth');
        await waitFile(killedFile, 20000);
        for (const w of [a1, a2]) {
            const a = await finished(id, 30000, w.pg);
            expect(`${w.name}: whole after the kill`, a.done && a.body === tokens(n),
                   `done=${a.done} error=${a.error} [${a.body.slice(0, 60)}…] ${a.err}`);
            const lines = await logLines(w.pg);
            const opened = lines.map((l, i) => (/ open /.test(l) ? i : -1)).filter((i) => i >= 0).pop();
            const authed = lines.findIndex((l, i) => i > opened && / ← authenticated /.test(l));
            const resumed = lines.findIndex((l, i) => i > opened && new RegExp(`→ resume id=${id} `).test(l));
            expect(`${w.name}: authenticated again before resuming`, opened > 0 && authed > opened && resumed > authed,
                   `open at ${opened}, authenticated at ${authed}, resume at ${resumed}`);
        }
        await bob.pg.waitForFunction(() => Array.from(document.querySelectorAll('#log li'))
            .filter((l) => / ← authenticated /.test(l.textContent)).length >= 2, null, { timeout: 20000 });
        await waitUser(bob.pg, 'bob');
        expect("bob's page reconnects and still shows none of alice's answers",
               !(await answerIds(bob.pg)).includes(id), 'it shows it');
        for (const w of tabs) w.outage = false;
    });

    // 10. a reload keeps the token (sessionStorage), the address bar stays clean
    await step('a reload keeps the token for the tab', async () => {
        await front(a2.pg);
        await a2.pg.reload({ waitUntil: 'load' });
        await waitUser(a2.pg, 'alice');
        expect('a reload keeps the token for the tab', !/token/.test(a2.pg.url()), a2.pg.url());
    });

    await step('screenshot with authentication saved', async () => {
        await front(a1.pg);
        await a1.pg.screenshot({ path: SCREENSHOT_AUTH, fullPage: true });
        expect('screenshot with authentication saved', fs.statSync(SCREENSHOT_AUTH).size > 1000, 'empty file');
    });
    for (const w of tabs)
        expect(`${w.name}: no page or console errors`, w.errors.length === 0, w.errors.join(' | '));
}

main().then(async () => {
    clearTimeout(overall);
    if (page && failures) {   // a picture of the page helps with a failure
        await page.screenshot({ path: SCREENSHOT, fullPage: true }).catch(() => {});
    }
    await shutdown(failures ? 1 : 0);
}, async (e) => {
    clearTimeout(overall);
    fail('driver runs', e && e.stack || e);
    if (page) await page.screenshot({ path: SCREENSHOT, fullPage: true }).catch(() => {});
    await shutdown(1);
});
