// Calls that survive network changes, in real Chromium: a participant
// ("roamer") runs in its own Chromium inside a network namespace, joined
// to the host by a veth pair; another ("steady") runs on the host. Salon
// listens on the host's end of the veth.
//
// - the roamer's link goes down for 5 s: it sees `reconnecting` (53405)
//   then `reconnected`, media flows again both ways, and the steady one
//   sees `participantReconnecting` / `participantReconnected`, never
//   `participantDisconnected` (and so does an official twilio-video SDK,
//   through Twilio's participant state `reconnecting`);
// - a tenth of the roamer's incoming packets are dropped (nftables): its
//   network quality level falls to 2 or less, for itself and as the steady
//   one sees it, and comes back when the drop ends;
// - the roamer moves to another address: ICE restarts, media resumes;
// - the official twilio-video SDK, moved the same way, restarts ICE through
//   /signaling and its media resumes;
// - the link stays down longer than the session timeout (shortened here):
//   the roamer is disconnected with 53405, the steady one sees it go.
//
//   node --test --test-concurrency=1 tests/e2e/reconnection.test.mjs
//
// Needs root (ip netns). Namespaces and veths are named rc<pid>…, and
// removed at the end.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS, assertReceiving, chromiumIn, eventually, here, inbound, namespace, newPage, outcome, sleep, startServer } from './harness.mjs';

const tag = String(process.pid % 100000);
const ns = `rc${tag}`;
/** The roamer's end of the veth (`namespace()` names it). */
const nsIf = `${ns}n`;
const subnet = `10.${200 + (process.pid % 50)}.${process.pid % 250}`;
const hostIp = `${subnet}.1`;
const roamerIp = `${subnet}.2`;
const movedIp = `${subnet}.3`;

const haveNft = (() => {
  try {
    execFileSync('nft', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** The namespace, once made. */
let net;
const inNs = (...args) => net.ip(...args);

let servers = {};
let hostBrowser;
let nsBrowser;
let tmp;

before(async () => {
  net = namespace({ name: ns, hostIp, nsIp: roamerIp, prefix: 24 });
  // Removing the first address of a subnet removes the others too unless
  // they are promoted: the move below adds the new address, then removes
  // the old one.
  net.exec(['sysctl', '-qw', `net.ipv4.conf.${nsIf}.promote_secondaries=1`]);
  // The normal session timeout (30 s) for outages that heal, a short one
  // for the outage that does not.
  // Off loopback the tutorial routes (the tests' tokens) must be asked for.
  servers.normal = await startServer(['--app-routes', 'true'], { host: hostIp });
  servers.short = await startServer(['--app-routes', 'true', '--session-timeout', '4'], { host: hostIp });
  // Pages on http://10.x are not secure contexts: no getUserMedia. Say
  // these origins are.
  const secure = `--unsafely-treat-insecure-origin-as-secure=${servers.normal.url},${servers.short.url}`;
  tmp = mkdtempSync(path.join(os.tmpdir(), 'salon-e2e-rc-'));
  const wrapper = chromiumIn(ns, tmp);
  const args = [...CHROMIUM_FLAGS, secure];
  hostBrowser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args });
  nsBrowser = await chromium.launch({ executablePath: wrapper, headless: true, args });
});

after(async () => {
  await hostBrowser?.close();
  await nsBrowser?.close();
  for (const server of Object.values(servers)) {
    if (process.env.SALON_E2E_SERVER_LOG) console.log(server.log.join(''));
    await server.stop();
  }
  net?.remove();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A page of `browser` with the SDK, recording the room's connection events in `window.events`. */
async function participant(browser, server, identity, room, options = {}) {
  const page = await newPage(browser, server);
  page.identity = identity;
  // The SDK's modules over the veth, from a fresh page: once in a CI run
  // one of them failed to fetch ("Failed to fetch dynamically imported
  // module"); a module that failed stays failed in that page, so load the
  // page again and retry (this file is about the network changes below).
  for (let attempt = 1; ; attempt++) {
    await page.goto(`${server.url}/e2e/blank.html`);
    const loaded = await outcome(page, async () => {
      window.Video = await import('/sdk/salon-video.js');
      return true;
    });
    if (loaded.ok) break;
    assert.ok(attempt < 3, `${identity} loads the SDK: ${JSON.stringify(loaded)}`);
    console.log(`# ${identity}: the SDK did not load (${loaded.message}); loading the page again`);
    await sleep(500);
  }
  const token = await server.token(identity, room);
  const joined = await outcome(page, async ({ token, room, debug, options }) => {
    if (debug) window.Video.Logger.getLogger('twilio-video').setLevel('debug');
    window.events = [];
    const r = await window.Video.connect(token, { name: room, audio: true, video: { width: 320 }, ...options });
    window.room = r;
    const log = (...e) => window.events.push(e);
    r.on('reconnecting', (error) => log('reconnecting', error?.code ?? null));
    r.on('reconnected', () => log('reconnected'));
    r.on('disconnected', (_room, error) => log('disconnected', error?.code ?? null));
    r.on('participantReconnecting', (p) => log('participantReconnecting', p.identity, p.state));
    r.on('participantReconnected', (p) => log('participantReconnected', p.identity, p.state));
    r.on('participantDisconnected', (p) => log('participantDisconnected', p.identity));
    return r.sid;
  }, { token, room, debug: !!process.env.SALON_E2E_VERBOSE, options });
  assert.equal(joined.ok, true, `${identity} joins: ${JSON.stringify(joined)}`);
  return page;
}

/** The official twilio-video SDK (its script-tag bundle), joined on Salon's /signaling, with the same `window.events`. */
async function officialParticipant(browser, server, identity, room) {
  const page = await newPage(browser, server);
  page.identity = identity;
  await page.goto(`${server.url}/e2e/blank.html`);
  await page.addScriptTag({ path: path.join(here, 'node_modules', 'twilio-video', 'dist', 'twilio-video.min.js') });
  const token = await server.token(identity, room);
  const joined = await outcome(page, async ({ token, room, wsServer }) => {
    const Video = window.Twilio.Video;
    window.events = [];
    const tracks = await Video.createLocalTracks({ audio: true, video: { width: 320, height: 240 } });
    const r = await Video.connect(token, { name: room, tracks, wsServer, insights: false });
    window.room = r;
    const log = (...e) => window.events.push(e);
    const attach = (p) => p.on('trackSubscribed', (track) => document.body.appendChild(track.attach()));
    r.participants.forEach(attach);
    r.on('participantConnected', attach);
    r.on('reconnecting', (error) => log('reconnecting', error?.code ?? null));
    r.on('reconnected', () => log('reconnected'));
    r.on('disconnected', (_room, error) => log('disconnected', error?.code ?? null));
    r.on('participantReconnecting', (p) => log('participantReconnecting', p.identity, p.state));
    r.on('participantReconnected', (p) => log('participantReconnected', p.identity, p.state));
    r.on('participantDisconnected', (p) => log('participantDisconnected', p.identity));
    return r.sid;
  }, { token, room, wsServer: `${server.url.replace('http', 'ws')}/signaling` });
  assert.equal(joined.ok, true, `${identity} joins: ${JSON.stringify(joined)}`);
  return page;
}

/** The ICE ufrag of the page's live peer connection's local description. */
const localUfrag = (page) => page.evaluate(() => {
  const pc = window.__e2e.pcs.find((p) => p.connectionState !== 'closed');
  return pc?.localDescription?.sdp.match(/a=ice-ufrag:(\S+)/)?.[1] ?? null;
});

const events = (page) => page.evaluate(() => window.events);
const names = (list) => list.map((e) => e[0]);

/** The local address of the roamer's selected candidate pair. */
const selectedAddress = (page) => page.evaluate(async () => {
  const pc = window.__e2e.pcs.find((p) => p.connectionState !== 'closed');
  if (!pc) return null;
  const stats = [...(await pc.getStats()).values()];
  const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
  const pair = stats.find((s) => s.id === transport?.selectedCandidatePairId);
  return stats.find((s) => s.id === pair?.localCandidateId)?.address ?? null;
});

/**
 * Media flows into `page` again: within `ms`, a second in which its video
 * decodes frames and its audio receives packets (after a network change
 * the path, a keyframe and the ICE restart's answer may take a moment).
 */
async function flowsAgain(page, ms = 20_000) {
  const deadline = Date.now() + ms;
  let last = [];
  for (;;) {
    const before = await inbound(page);
    await sleep(1_000);
    last = await inbound(page);
    const grew = (kind, key) => last.some((s) => s.kind === kind && s[key] > (before.find((b) => b.mid === s.mid)?.[key] ?? 0));
    if (grew('video', 'framesDecoded') && grew('audio', 'packetsReceived')) return Date.now() + ms - deadline;
    assert.ok(Date.now() < deadline, `${page.identity}: media flows again within ${ms} ms: ${JSON.stringify(last)}`);
  }
}

async function pair(server, room, options = {}) {
  const steady = await participant(hostBrowser, server, 'steady', room, options);
  const roamer = await participant(nsBrowser, server, 'roamer', room, options);
  await Promise.all([
    assertReceiving(roamer, { videos: 1, audios: 1 }),
    assertReceiving(steady, { videos: 1, audios: 1 }),
  ]);
  return { steady, roamer };
}

async function leave(...pages) {
  for (const page of pages) {
    await page.evaluate(() => window.room?.disconnect()).catch(() => {});
    await page.close();
  }
}

describe('a participant whose network changes', () => {
  test('a 5 s outage: reconnecting, reconnected, media again; the others see it reconnect, never leave', async () => {
    const { steady, roamer } = await pair(servers.normal, 'e2e-rc-outage');
    // The official SDK watches too: Twilio's participant state `reconnecting`.
    const observer = await officialParticipant(hostBrowser, servers.normal, 'observer', 'e2e-rc-outage');
    inNs('link', 'set', nsIf, 'down');
    await eventually(async () => names(await events(roamer)).includes('reconnecting'), 'the roamer reconnecting', 10_000);
    await eventually(async () => names(await events(steady)).includes('participantReconnecting'), 'the steady one told', 10_000);
    await sleep(5_000 - 0);
    inNs('link', 'set', nsIf, 'up');
    await eventually(async () => names(await events(roamer)).includes('reconnected'), 'the roamer reconnected', 30_000);
    await eventually(async () => names(await events(steady)).includes('participantReconnected'), 'the steady one told it is back', 30_000);
    const took = await Promise.all([flowsAgain(roamer), flowsAgain(steady)]);
    console.log(`# media flowing again ${took.join(' and ')} ms after reconnected`);
    const roamerEvents = await events(roamer);
    assert.deepEqual(roamerEvents.find((e) => e[0] === 'reconnecting'), ['reconnecting', 53405], JSON.stringify(roamerEvents));
    assert.ok(!names(roamerEvents).includes('disconnected'), JSON.stringify(roamerEvents));
    const steadyEvents = await events(steady);
    assert.deepEqual(steadyEvents.find((e) => e[0] === 'participantReconnecting'), ['participantReconnecting', 'roamer', 'reconnecting']);
    assert.deepEqual(steadyEvents.find((e) => e[0] === 'participantReconnected'), ['participantReconnected', 'roamer', 'connected']);
    assert.ok(!names(steadyEvents).includes('participantDisconnected'), JSON.stringify(steadyEvents));
    assert.equal(await roamer.evaluate(() => window.room.state), 'connected');
    await eventually(async () => names(await events(observer)).includes('participantReconnected'), 'the official SDK told it is back');
    const observed = (await events(observer)).filter((e) => e[1] === 'roamer');
    assert.deepEqual(observed, [['participantReconnecting', 'roamer', 'reconnecting'], ['participantReconnected', 'roamer', 'connected']]);
    await leave(roamer, steady, observer);
  });

  test('10% of its packets lost: its network quality falls, for itself and for the others, and comes back', { skip: !haveNft && 'needs nft (tests/e2e/setup installs it)' }, async () => {
    const { steady, roamer } = await pair(servers.normal, 'e2e-rc-loss', { networkQuality: { local: 1, remote: 1 } });
    const own = () => roamer.evaluate(() => window.room.localParticipant.networkQualityLevel);
    const seen = () => steady.evaluate(() => [...window.room.participants.values()].find((p) => p.identity === 'roamer')?.networkQualityLevel ?? null);
    await eventually(async () => (await own()) >= 4 && (await seen()) >= 4, 'a clean network scored 4 or 5 on both sides', 20_000);
    // Every tenth packet into the roamer's namespace dropped (no netem in
    // this kernel): its downlink loses 10%, which its receiver reports
    // tell the server.
    net.exec(['nft', '-f', '-'], `table inet e2eloss {\n chain input {\n type filter hook input priority 0;\n meta l4proto udp numgen random mod 100 < 10 drop\n }\n}\n`);
    try {
      await eventually(async () => (await own()) <= 2 && (await seen()) <= 2, 'the lossy network scored 2 or less on both sides', 30_000);
      console.log(`# with 10% loss: the roamer's own level ${await own()}, as the steady one sees it ${await seen()}`);
    } finally {
      net.exec(['nft', 'delete', 'table', 'inet', 'e2eloss']);
    }
    await eventually(async () => (await own()) >= 4 && (await seen()) >= 4, 'back to 4 or 5 once the loss ends', 30_000);
    await leave(roamer, steady);
  });

  test('a new address: ICE restarts from it and media resumes', async () => {
    const { steady, roamer } = await pair(servers.normal, 'e2e-rc-move');
    assert.equal(await eventually(() => selectedAddress(roamer), 'a selected pair'), roamerIp);
    inNs('addr', 'add', `${movedIp}/24`, 'dev', nsIf);
    inNs('addr', 'del', `${roamerIp}/24`, 'dev', nsIf);
    await eventually(async () => (await selectedAddress(roamer)) === movedIp, 'the roamer on its new address', 30_000);
    await Promise.all([flowsAgain(roamer), flowsAgain(steady)]);
    assert.equal(await roamer.evaluate(() => window.room.state), 'connected');
    assert.ok(!names(await events(steady)).includes('participantDisconnected'), JSON.stringify(await events(steady)));
    assert.ok(!names(await events(roamer)).includes('disconnected'), JSON.stringify(await events(roamer)));
    await leave(roamer, steady);
    inNs('addr', 'add', `${roamerIp}/24`, 'dev', nsIf);
    inNs('addr', 'del', `${movedIp}/24`, 'dev', nsIf);
  });

  test('the official twilio-video SDK moved to a new address restarts ICE through /signaling, and media resumes', async () => {
    const room = 'e2e-rc-official';
    const steady = await participant(hostBrowser, servers.normal, 'steady', room);
    const roamer = await officialParticipant(nsBrowser, servers.normal, 'official-roamer', room);
    await Promise.all([flowsAgain(roamer), flowsAgain(steady)]);
    const before = await localUfrag(roamer);
    inNs('addr', 'add', `${movedIp}/24`, 'dev', nsIf);
    inNs('addr', 'del', `${roamerIp}/24`, 'dev', nsIf);
    try {
      // The SDK restarts ICE when its connection fails (a new offer with
      // new credentials, over its resumed socket); Salon answers it.
      await eventually(async () => {
        const ufrag = await localUfrag(roamer);
        return ufrag && ufrag !== before && (await selectedAddress(roamer)) === movedIp;
      }, 'the official SDK restarted ICE from its new address', 40_000);
      await Promise.all([flowsAgain(roamer), flowsAgain(steady)]);
    } finally {
      inNs('addr', 'add', `${roamerIp}/24`, 'dev', nsIf);
      inNs('addr', 'del', `${movedIp}/24`, 'dev', nsIf);
    }
    const roamerEvents = await events(roamer);
    assert.ok(!names(roamerEvents).includes('disconnected'), JSON.stringify(roamerEvents));
    assert.ok(!names(await events(steady)).includes('participantDisconnected'), JSON.stringify(await events(steady)));
    await leave(roamer, steady);
  });

  test('an outage longer than the session timeout: disconnected with 53405', async () => {
    const { steady, roamer } = await pair(servers.short, 'e2e-rc-gone');
    inNs('link', 'set', nsIf, 'down');
    try {
      await eventually(async () => names(await events(roamer)).includes('disconnected'), 'the roamer disconnected', 30_000);
      await eventually(async () => names(await events(steady)).includes('participantDisconnected'), 'the steady one sees it go', 30_000);
    } finally {
      inNs('link', 'set', nsIf, 'up');
    }
    const roamerEvents = await events(roamer);
    assert.deepEqual(roamerEvents.filter((e) => e[0] !== 'participantReconnecting'),
      [['reconnecting', 53405], ['disconnected', 53405]], JSON.stringify(roamerEvents));
    const rest = await servers.short.rest('GET', '/v1/Rooms/e2e-rc-gone/Participants?Status=disconnected');
    assert.deepEqual(rest.body.participants.map((p) => p.identity), ['roamer'], JSON.stringify(rest.body));
    await leave(roamer, steady);
  });
});
