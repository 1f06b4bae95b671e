// The e2e harness: a real Salon server on a free loopback port and one real
// headless Chromium (Debian's /usr/bin/chromium) with fake camera and
// microphone, driven by playwright-core. Each participant is a page in a
// context of its own (cheaper than a browser each).
//
// Every page gets a small instrumentation script before any of its own:
// it records the RTCPeerConnections and getUserMedia streams the page makes
// (so tests can read `inbound-rtp` stats and prove that nothing is left
// running after a disconnect), and asks the fake camera for 320x240 at 15
// fps whatever the app asked, to keep three participants within two cores.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '../..');
export const artifacts = process.env.SALON_E2E_ARTIFACTS || path.join(repo, 'target', 'e2e');

/** The flags Chromium needs for WebRTC with fake devices, headless, on a server. */
export const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  // Let ICE use the loopback interface too: Salon on 127.0.0.1 advertises
  // only 127.0.0.1, and a machine may have no other interface.
  '--allow-loopback-in-peer-connection',
  // Background pages (every page but one is "hidden" to Chromium) must not
  // have their timers and rendering throttled during a call.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
  '--autoplay-policy=no-user-gesture-required',
];

// Fixed credentials, so the tests can call the REST API.
export const CREDENTIALS = {
  SALON_ACCOUNT_SID: 'AC' + 'e2e0'.repeat(8),
  SALON_AUTH_TOKEN: 'e2e-auth-token-0123456789abcdef',
  SALON_API_KEY: 'SK' + 'e2e1'.repeat(8),
  SALON_API_SECRET: 'e2e-api-secret-0123456789abcdef',
};

/** A TCP port nothing listens on now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Whether `command` is on the PATH. */
export function have(command) {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A private network namespace `name` joined to this one by a veth pair:
 * `${name}h` on this side with `hostIp`, `${name}n` inside with `nsIp`
 * (both /`prefix`), loopback up inside. What a killed run left of it is
 * removed first. Needs root and iproute2.
 *
 * `ip(...args)` runs `ip -n name …`; `exec(args, input)` runs a program
 * inside (stdin from `input`); `remove()` takes it down (the veth goes
 * with the namespace).
 */
export function namespace({ name, hostIp, nsIp, prefix = 30 }) {
  const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  const hostSide = `${name}h`;
  const nsSide = `${name}n`;
  const remove = () => {
    try { ip('netns', 'del', name); } catch { /* not there */ }
    try { ip('link', 'del', hostSide); } catch { /* went with the namespace */ }
  };
  remove();
  ip('netns', 'add', name);
  ip('link', 'add', hostSide, 'type', 'veth', 'peer', 'name', nsSide, 'netns', name);
  ip('addr', 'add', `${hostIp}/${prefix}`, 'dev', hostSide);
  ip('link', 'set', hostSide, 'up');
  ip('-n', name, 'link', 'set', 'lo', 'up');
  ip('-n', name, 'addr', 'add', `${nsIp}/${prefix}`, 'dev', nsSide);
  ip('-n', name, 'link', 'set', nsSide, 'up');
  return {
    name,
    hostSide,
    nsSide,
    ip: (...args) => ip('-n', name, ...args),
    exec: (args, input) => execFileSync('ip', ['netns', 'exec', name, ...args], {
      input,
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    }).toString(),
    remove,
  };
}

/**
 * A Chromium executable that runs inside network namespace `name`: a
 * wrapper script written into `dir`, for `chromium.launch({ executablePath })`.
 */
export function chromiumIn(name, dir) {
  const wrapper = path.join(dir, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${name} ${process.env.CHROMIUM || '/usr/bin/chromium'} "$@"\n`);
  chmodSync(wrapper, 0o755);
  return wrapper;
}

/**
 * Start `target/debug/salon` (or $SALON_BIN) on a free port with a fresh
 * data directory (and `extraArgs`), and wait for /healthz. `host` is the
 * address it listens on (its media port too): loopback unless a test
 * reaches it from a network namespace.
 */
export async function startServer(extraArgs = [], { host = '127.0.0.1' } = {}) {
  const binary = process.env.SALON_BIN || path.join(repo, 'target', 'debug', 'salon');
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'salon-e2e-'));
  const log = [];
  const child = spawn(binary, ['--listen', `${host}:${port}`, '--media-port', '0', '--turn-port', '0', '--data-dir', dataDir, ...extraArgs], {
    env: { ...process.env, ...CREDENTIALS, SALON_LOG: process.env.SALON_LOG || 'info', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => log.push(d.toString()));
  child.stderr.on('data', (d) => log.push(d.toString()));
  const url = `http://${host}:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`salon exited with ${child.exitCode}:\n${log.join('')}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`salon did not answer /healthz within 30 s:\n${log.join('')}`);
    await sleep(100);
  }
  const auth = 'Basic ' + Buffer.from(`${CREDENTIALS.SALON_API_KEY}:${CREDENTIALS.SALON_API_SECRET}`).toString('base64');
  return {
    url,
    port,
    log,
    /** Its data directory (for `salon --data-dir` commands beside it). */
    dataDir,
    /** The process (to kill it without a graceful shutdown). */
    child,
    /** Call the REST API with the fixed API key. */
    async rest(method, route, form) {
      const r = await fetch(`${url}${route}`, {
        method,
        headers: { authorization: auth, ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
        body: form ? new URLSearchParams(form).toString() : undefined,
      });
      return { status: r.status, body: await r.json() };
    },
    /** A token from the tutorial route; without `roomName`, one that grants any room. */
    async token(identity, roomName) {
      const r = await fetch(`${url}/create-token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ identity, roomName }),
      });
      return (await r.json()).token;
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5_000)]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs in every page before its scripts. */
function instrument() {
  // channels: the data channels the server opened to the page, with the
  // text messages it sent on each (the first 200).
  const probe = { pcs: [], streams: [], channels: [] };
  window.__e2e = probe;
  // A Proxy, not a subclass: RTCPeerConnection.prototype stays the native
  // one, whose own properties the official twilio-video SDK proxies (its
  // `ontrack` among them; a subclass's prototype has none).
  window.RTCPeerConnection = new Proxy(window.RTCPeerConnection, {
    construct(target, args, newTarget) {
      const pc = Reflect.construct(target, args, newTarget);
      probe.pcs.push(pc);
      pc.addEventListener('datachannel', ({ channel }) => {
        const entry = { label: channel.label, messages: [] };
        // The channel itself, for tests that write on it (not enumerable:
        // entries stay serializable).
        Object.defineProperty(entry, 'channel', { value: channel });
        probe.channels.push(entry);
        channel.addEventListener('message', ({ data }) => {
          if (typeof data === 'string' && entry.messages.length < 200) entry.messages.push(data);
        });
      });
      return pc;
    },
  });
  const devices = navigator.mediaDevices;
  const gum = devices.getUserMedia.bind(devices);
  devices.getUserMedia = async (constraints = {}) => {
    const c = { ...constraints };
    if (c.video) {
      // Small by default, to spare the CPU; a test that needs a larger
      // camera (simulcast) sets window.__e2eCamera = {width, height, frameRate}.
      c.video = { ...(typeof c.video === 'object' ? c.video : {}), width: 320, height: 240, frameRate: 15, ...(window.__e2eCamera || {}) };
    }
    const stream = await gum(c);
    probe.streams.push(stream);
    return stream;
  };
}

/** Launch Chromium; with `tone`, every page's fake microphone plays a steady tone (see toneWav); `args`: more command-line flags. */
export async function launchBrowser({ tone = false, args = [] } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_FLAGS, ...(tone ? [`--use-file-for-fake-audio-capture=${toneWav()}`] : []), ...args],
  });
}

/** A WAV file of a steady 440 Hz tone (16-bit mono, 48 kHz, 2 s; Chromium loops it). */
export function toneWav() {
  return wav('tone', (i, rate) => Math.round(12_000 * Math.sin((2 * Math.PI * 440 * i) / rate)));
}

/** A WAV file of digital silence (16-bit mono, 48 kHz, 2 s): a microphone in a quiet room, to Opus's DTX. */
export function silenceWav() {
  return wav('silence', () => 0);
}

/** A 2 s WAV file (16-bit mono, 48 kHz) of `sample(i, rate)`, in a new temporary directory. */
function wav(name, sample) {
  const rate = 48_000;
  const samples = rate * 2;
  const data = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) data.writeInt16LE(sample(i, rate), i * 2);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), `salon-${name}-`)), `${name}.wav`);
  writeFileSync(file, Buffer.concat([header, data]));
  return file;
}

/**
 * A page in a fresh context (its own cookies and permissions: one
 * participant), instrumented, with its console errors collected.
 * @param {import('playwright-core').Browser} browser
 */
export async function newPage(browser, server, { permissions = ['camera', 'microphone', 'local-network-access'] } = {}) {
  const context = await browser.newContext({ permissions, viewport: { width: 960, height: 640 } });
  await context.addInitScript(instrument);
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') page.errors.push(m.text());
    if (process.env.SALON_E2E_VERBOSE) console.log(`[page] ${m.type()}: ${m.text()}`);
  });
  // Test pages are served as if Salon served them, so they import /sdk/ and
  // call /create-token same-origin.
  await page.route(`${server.url}/e2e/**`, (route) => {
    const name = new URL(route.request().url()).pathname.replace(/^\/e2e\//, '');
    route.fulfill({ contentType: 'text/html', body: readFileSync(path.join(here, 'pages', name)) });
  });
  page.close = ((close) => async () => {
    await close.call(page);
    await context.close();
  })(page.close);
  return page;
}

/**
 * Poll `fn` in the test until it returns a truthy value.
 * @template T
 * @param {() => Promise<T>|T} fn
 * @param {string} what for the timeout message
 */
export async function eventually(fn, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await sleep(100);
  }
}

/**
 * Inbound RTP of a page's peer connections, by kind: framesDecoded,
 * packetsReceived.
 * @param {import('playwright-core').Page} page
 */
export function inbound(page) {
  return page.evaluate(async () => {
    const out = [];
    for (const pc of window.__e2e.pcs) {
      if (pc.connectionState === 'closed') continue;
      const stats = await pc.getStats();
      stats.forEach((s) => {
        if (s.type === 'inbound-rtp') {
          out.push({ kind: s.kind, mid: s.mid, framesDecoded: s.framesDecoded || 0, packetsReceived: s.packetsReceived || 0 });
        }
      });
    }
    return out;
  });
}

/**
 * A TCP proxy to Salon's HTTP port, whose connections the test can cut
 * without a WebSocket close frame (as a network failure would), and which
 * can stop accepting new ones.
 */
export async function tcpProxy(targetPort) {
  const pairs = new Set();
  let held = false;
  const server = net.createServer((client) => {
    if (held) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Cut every connection: RST to both ends, no close frames. */
    cut() {
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
      pairs.clear();
    },
    /** Reset every new connection at once until release() (and cut the open ones). */
    hold() {
      held = true;
      this.cut();
    },
    release() {
      held = false;
    },
    /** Stop accepting connections (and cut the open ones). */
    async close() {
      this.cut();
      if (server.listening) await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * A blank page on Salon's origin with the SDK imported as `window.Video`.
 * @param {import('playwright-core').Browser} browser
 */
export async function sdkPage(browser, server, identity) {
  const page = await newPage(browser, server);
  page.identity = identity;
  await page.goto(`${server.url}/e2e/blank.html`);
  await page.evaluate(async () => {
    window.Video = await import('/sdk/salon-video.js');
  });
  return page;
}

/** The official twilio-video SDK's script-tag bundle (pinned in package.json). */
export const OFFICIAL_SDK = path.join(here, 'node_modules', 'twilio-video', 'dist', 'twilio-video.min.js');

/** A page from `server` with the official SDK loaded (window.Twilio.Video). */
export async function officialSdkPage(browser, server, identity, token) {
  const page = await newPage(browser, server);
  await page.goto(`${server.url}/e2e/blank.html`);
  await page.addScriptTag({ path: OFFICIAL_SDK });
  page.identity = identity;
  page.token = token ?? (await server.token(identity));
  return page;
}

/** Run `fn` in the page and describe how the promise it returns settled. */
export const outcome = (page, fn, arg) => page.evaluate(async ({ source, arg }) => {
  try {
    // eslint-disable-next-line no-new-func
    const value = await new Function('arg', `return (${source})(arg)`)(arg);
    return { ok: true, value: value === undefined ? null : value };
  } catch (e) {
    return { ok: false, name: e.name, ctor: e.constructor.name, code: e.code ?? null, message: e.message };
  }
}, { source: fn.toString(), arg });

/**
 * Media flows into `page`: `videos` video tracks whose framesDecoded grows,
 * and `audios` audio tracks whose packetsReceived grows.
 */
export async function assertReceiving(page, { videos, audios }) {
  const count = (list, kind, key) => list.filter((s) => s.kind === kind && s[key] > 0).length;
  let last = [];
  const first = await eventually(async () => {
    last = await inbound(page);
    return count(last, 'video', 'framesDecoded') >= videos && count(last, 'audio', 'packetsReceived') >= audios && last;
  }, `${page.identity} to decode ${videos} videos and receive ${audios} audio tracks`, 15_000).catch((e) => {
    throw new Error(`${e.message}; inbound-rtp: ${JSON.stringify(last)}`);
  });
  await sleep(1_000);
  const second = await inbound(page);
  const grew = (kind, key) => second.filter((s) => s.kind === kind && s[key] > (first.find((f) => f.mid === s.mid)?.[key] ?? 0)).length;
  assert.ok(grew('video', 'framesDecoded') >= videos, `${page.identity}: framesDecoded grows on ${videos} video tracks: ${JSON.stringify(second)}`);
  assert.ok(grew('audio', 'packetsReceived') >= audios, `${page.identity}: packetsReceived grows on ${audios} audio tracks: ${JSON.stringify(second)}`);
}

/** Every RTCPeerConnection the page made is closed, and every captured track ended unless `keep`. */
export const leftovers = (page) => page.evaluate(() => ({
  openPeerConnections: window.__e2e.pcs.filter((pc) => pc.connectionState !== 'closed').length,
  liveTracks: window.__e2e.streams.flatMap((s) => s.getTracks()).filter((t) => t.readyState === 'live').length,
}));

/**
 * What the page's peer connections send or receive, as Chromium says:
 * `[{kind, mimeType, count}]` for `outbound-rtp` (count: packetsSent) or
 * `inbound-rtp` (count: framesDecoded for video, packetsReceived for audio).
 * @param {'outbound-rtp'|'inbound-rtp'} type
 */
export function rtpCodecs(page, type) {
  return page.evaluate(async (type) => {
    const out = [];
    for (const pc of window.__e2e.pcs) {
      if (pc.connectionState === 'closed') continue;
      const stats = await pc.getStats();
      stats.forEach((s) => {
        if (s.type !== type) return;
        const count = type === 'outbound-rtp' ? s.packetsSent : s.kind === 'video' ? s.framesDecoded : s.packetsReceived;
        out.push({ kind: s.kind, mimeType: stats.get(s.codecId)?.mimeType ?? null, count: count || 0 });
      });
    }
    return out;
  }, type);
}

/**
 * Serve `files` (path → {body, type}) at `origin` for this page's context,
 * as if another web server hosted an app there: the page's origin is then
 * not Salon's, and requests to Salon are cross-origin for real.
 * @param {import('playwright-core').Page} page
 * @param {string} origin e.g. `http://app.test`
 * @param {Record<string, {body: string|Buffer, type: string}>} files
 */
export async function serveAt(page, origin, files) {
  await page.route(`${origin}/**`, (route) => {
    const file = files[new URL(route.request().url()).pathname];
    if (file) route.fulfill({ status: 200, contentType: file.type, body: file.body });
    else route.fulfill({ status: 404, contentType: 'text/plain', body: 'not found' });
  });
}
