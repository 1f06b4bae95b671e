// Simulcast under a limited downlink (#9): a subscriber in its own network
// namespace, whose downlink (the host's end of its veth pair) is shaped by
// `tc qdisc tbf` to 300 kbit/s, receives a low layer (decoded width ≤ 480)
// of a 960x540 publisher sending 240/480/960-wide layers, while a
// subscriber on the ordinary network receives the top layer. An estimate
// of each subscriber's downlink is what tells them apart: by default the
// server's own send-side (TWCC) one, or, with `--bandwidth-estimation
// remb`, the one Chromium sends itself (REMB) once what it receives
// carries no transport-wide sequence numbers; both are run. With REMB, a
// downlink that drops 15% of its packets without queueing them (nftables
// in the namespace) is seen through the subscriber's loss reports.
//
//   node --test --test-concurrency=1 tests/e2e/simulcast-downlink.test.mjs
//
// Needs root, `ip` (iproute2) and `tc`; without them the test is skipped
// with a note. The namespace and its veth pair are named `scdl…`; the
// server listens on the host's end of the pair, which both browsers reach.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS, chromiumIn, eventually, have, namespace, newPage, startServer } from './harness.mjs';

const id = process.pid % 10000;
const netns = `scdl${id}`;
const octet = (process.pid % 200) + 20;
const hostIp = `10.248.${octet}.1`;
const nsIp = `10.248.${octet}.2`;
/** The confined subscriber's downlink. */
const RATE = '300kbit';
/**
 * The share of the confined subscriber's UDP dropped, percent: over the
 * loss bound's 10%, and little enough that Chromium's REMB reads on (with
 * the bound turned off, the subscriber stayed on the top layer for the
 * 30 s; at 30% loss the REMB falls by itself).
 */
const LOSS = 15;

const skip = process.getuid?.() !== 0 || !have('ip') || !have('tc')
  ? 'needs root, ip and tc (iproute2)'
  : false;

const run = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });

let server;
let rembServer;
let plain;
let confined;
let dir;
/** The namespace, once made. */
let ns;

before(async () => {
  if (skip) return;
  ns = namespace({ name: netns, hostIp, nsIp });

  server = await startServer(['--turn', 'false', '--app-routes', 'true'], { host: hostIp });
  rembServer = await startServer(['--turn', 'false', '--app-routes', 'true', '--bandwidth-estimation', 'remb'], { host: hostIp });
  // Pages on http://10.x are not a secure context: let them have a camera.
  const flags = [...CHROMIUM_FLAGS, `--unsafely-treat-insecure-origin-as-secure=${server.url},${rembServer.url}`];
  dir = mkdtempSync(path.join(os.tmpdir(), 'salon-e2e-scdl-'));
  const wrapper = chromiumIn(netns, dir);
  plain = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: flags });
  confined = await chromium.launch({ executablePath: wrapper, headless: true, args: flags });
});

after(async () => {
  await confined?.close();
  await plain?.close();
  await server?.stop();
  await rembServer?.stop();
  ns?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (process.env.SALON_E2E_SERVER_LOG && server) console.log(server.log.join(''));
});

async function sdkPage(browser, identity, server) {
  const page = await newPage(browser, server);
  page.identity = identity;
  page.server = server;
  await page.goto(`${server.url}/e2e/blank.html`);
  // The first fetch from a browser started moments ago in a fresh network
  // namespace has failed now and then ("Failed to fetch dynamically
  // imported module", with nothing in the server's log): once more after a
  // moment, as a user would reload.
  for (let attempt = 1; ; attempt++) {
    try {
      await page.evaluate(async () => {
        window.Video = await import('/sdk/salon-video.js');
      });
      return page;
    } catch (e) {
      if (attempt >= 2 || !/Failed to fetch/.test(String(e))) throw e;
      console.log(`simulcast-downlink: ${identity}'s SDK import failed once (${e.message.split('\n')[0]}); again`);
      await sleep(1_000);
      await page.goto(`${server.url}/e2e/blank.html`);
    }
  }
}

/** Connect; publish a 960x540 simulcast camera, or render the first remote video at 960x540. */
async function join(page, room, publish) {
  const token = await page.server.token(page.identity);
  await page.evaluate(async ({ token, room, publish }) => {
    const t = {};
    window.t = t;
    window.__e2eCamera = { width: 960, height: 540, frameRate: 15 };
    const tracks = publish ? [await window.Video.createLocalVideoTrack()] : [];
    t.room = await window.Video.connect(token, {
      name: room,
      tracks,
      audio: false,
      preferredVideoCodecs: [{ codec: 'VP8', simulcast: true }],
      bandwidthProfile: { video: { contentPreferencesMode: 'manual' } },
    });
    const subscribed = (track) => {
      if (track.kind !== 'video' || t.video) return;
      t.video = track;
      t.switches = [];
      const at = performance.now();
      track.on('switchedOff', () => t.switches.push(`off ${Math.round(performance.now() - at)}ms ${track.switchOffReason}`));
      track.on('switchedOn', () => t.switches.push(`on ${Math.round(performance.now() - at)}ms`));
      document.body.appendChild(track.attach());
      track.setContentPreferences({ renderDimensions: { width: 960, height: 540 } });
    };
    t.room.on('trackSubscribed', subscribed);
    t.room.participants.forEach((p) => p.videoTracks.forEach((publication) => publication.track && subscribed(publication.track)));
  }, { token, room, publish });
}

const received = (page) => page.evaluate(async () => {
  let width = 0;
  let decoded = 0;
  for (const pc of window.__e2e.pcs) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && s.framesDecoded) {
        width = Math.max(width, s.frameWidth || 0);
        decoded += s.framesDecoded;
      }
    });
  }
  return { width, decoded };
});

/** `salon_media_receiver_estimates_total` of `server`'s /metrics. */
async function receiverEstimates(server) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('salon_media_receiver_estimates_total'));
  return Number(line?.split(' ').pop() ?? NaN);
}

/** Alice publishes, bob and carol (behind RATE) subscribe, through `server`. */
async function limitedDownlink(server, estimation) {
  const alice = await sdkPage(plain, 'alice', server);
  const bob = await sdkPage(plain, 'bob', server);
  const carol = await sdkPage(confined, 'carol', server);
  // What leaves the host into the namespace is the subscriber's downlink:
  // shaped once the SDK is loaded (it would take seconds at this rate).
  run('tc', ['qdisc', 'add', 'dev', ns.hostSide, 'root', 'tbf', 'rate', RATE, 'burst', '16kbit', 'latency', '200ms']);
  try {
    await join(alice, 'downlink', true);
    await join(bob, 'downlink', false);
    await join(carol, 'downlink', false);
    await eventually(async () => (await received(bob)).width === 960, 'bob to get the top layer', 30_000);
    // Carol starts high (no estimate yet, or TWCC's start at 1.5 Mbit/s)
    // until her link's queue brings the estimate down (a few seconds).
    await sleep(10_000);
    await eventually(async () => {
      const r = await received(carol);
      return r.decoded > 0 && r.width > 0 && r.width <= 480;
    }, 'carol to decode a low layer', 30_000);
    // And, with TWCC, it stays low while frames keep coming: nothing pushes
    // it up past what the link carries for long (a probe or a noisy
    // reading can lift it for a second or so, so it is looked at twice a
    // second for 10 s and most looks must find it low). Not asserted with
    // REMB: with no way to probe that leaves the picture alone, the
    // allocation tries the next layer now and then (every 3 s at first,
    // backing off to 48 s), and the decoder shows a failed try for a second
    // or two until the lower layer's keyframe gets through the full queue —
    // the known gap of `--bandwidth-estimation remb` (docs/performance.md);
    // the widths are printed.
    //
    // Frames may also stop for a while the way Twilio's do: when the
    // estimate falls below even the lowest layer, the track is switched off
    // with the reason `network-congestion` until it recovers. On a loaded
    // machine (CI, two cores, three browsers) the send-side estimate has
    // dipped so for about 3 s (late arrivals read as queueing); a 5 s
    // window once fell inside one. So: frames over 10 s, and any switch-off
    // is for congestion and ends.
    const before = await received(carol);
    const widths = [];
    const counts = [];
    for (let i = 0; i < 20; i++) {
      await sleep(500);
      const r = await received(carol);
      widths.push(r.width);
      counts.push(r.decoded);
    }
    const later = await received(carol);
    const switches = await carol.evaluate(() => window.t.switches);
    console.log(`simulcast-downlink (${estimation}): carol every 0.5 s: widths ${widths.join(', ')}; decoded ${before.decoded} then ${counts.join(', ')}; switched: ${switches.join('; ') || 'never'}`);
    assert.ok(later.decoded > before.decoded, 'carol keeps decoding');
    for (const s of switches.filter((s) => s.startsWith('off'))) assert.match(s, /network-congestion$/, 'switched off only for congestion');
    await eventually(() => carol.evaluate(() => !window.t.video.isSwitchedOff), 'carol switched on (again)', 15_000);
    const high = widths.filter((w) => w > 480).length;
    if (estimation === 'twcc') assert.ok(high <= 8, `carol stays low (widths ${widths.join(', ')})`);
    assert.equal((await received(bob)).width, 960, 'bob still on the top layer');
    const estimates = await receiverEstimates(server);
    console.log(`simulcast-downlink (${estimation}): bob ${(await received(bob)).width} wide, carol behind ${RATE} ${later.width} wide, ${later.decoded - before.decoded} frames in 10 s; ${estimates} receiver estimates`);
    if (estimation === 'remb') {
      assert.ok(estimates > 0, 'the subscribers sent REMB and the allocation took it');
    } else {
      assert.equal(estimates, 0, 'with TWCC, no receiver estimate is taken');
    }
  } finally {
    await alice.close();
    await bob.close();
    await carol.close();
    run('tc', ['qdisc', 'del', 'dev', ns.hostSide, 'root']);
  }
}

/**
 * With REMB, a downlink that drops a share of what it gets without queueing
 * it: Chromium's REMB is delay-based and reads on as if nothing happened,
 * so what brings the layer down is the loss its receiver reports say
 * (`LossBound` in crates/media/src/allocation.rs).
 */
async function lossyDownlink(server) {
  const alice = await sdkPage(plain, 'alice', server);
  const carol = await sdkPage(confined, 'carol', server);
  try {
    await join(alice, 'lossy', true);
    await join(carol, 'lossy', false);
    await eventually(async () => (await received(carol)).width === 960, 'carol to get the top layer', 30_000);
    ns.exec(['nft', '-f', '-'], `table inet scdlloss {\n chain input {\n type filter hook input priority 0;\n meta l4proto udp numgen random mod 100 < ${LOSS} drop\n }\n}\n`);
    try {
      await eventually(async () => {
        const r = await received(carol);
        return r.width > 0 && r.width <= 480;
      }, `carol, losing ${LOSS}%, to come off the top layer`, 30_000);
      console.log(`simulcast-downlink (remb): losing ${LOSS}% of her downlink, carol ${(await received(carol)).width} wide`);
    } finally {
      ns.exec(['nft', 'delete', 'table', 'inet', 'scdlloss']);
    }
  } finally {
    await alice.close();
    await carol.close();
  }
}

describe('simulcast under a limited downlink', { skip }, () => {
  test(`a subscriber behind ${RATE} gets a low layer, one on the open network the top layer`, async () => {
    await limitedDownlink(server, 'twcc');
  });

  test('the same with the subscribers\' own estimates (--bandwidth-estimation remb)', async () => {
    await limitedDownlink(rembServer, 'remb');
  });

  test(`with remb, a subscriber losing ${LOSS}% of its downlink (dropped, not queued: REMB does not see it) comes off the top layer by its loss reports`, { skip: !have('nft') && 'needs nft (tests/e2e/setup installs it)' }, async () => {
    await lossyDownlink(rembServer);
  });
});
