// Simulcast under a limited downlink (#9): a subscriber in its own network
// namespace, whose downlink (the host's end of its veth pair) is shaped by
// `tc qdisc tbf` to 300 kbit/s, receives a low layer (decoded width ≤ 480)
// of a 960x540 publisher sending 240/480/960-wide layers, while a
// subscriber on the ordinary network receives the top layer. The server's
// send-side (TWCC) estimate of each subscriber's downlink is what tells
// them apart.
//
//   node --test --test-concurrency=1 tests/e2e/simulcast-downlink.test.mjs
//
// Needs root, `ip` (iproute2) and `tc`; without them the test is skipped
// with a note. The namespace and its veth pair are named `scdl…`; the
// server listens on the host's end of the pair, which both browsers reach.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS, eventually, newPage, startServer } from './harness.mjs';

const id = process.pid % 10000;
const netns = `scdl${id}`;
const hostSide = `scdl${id}h`;
const nsSide = `scdl${id}n`;
const octet = (process.pid % 200) + 20;
const hostIp = `10.248.${octet}.1`;
const nsIp = `10.248.${octet}.2`;
/** The confined subscriber's downlink. */
const RATE = '300kbit';

const have = (cmd) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const skip = process.getuid?.() !== 0 || !have('ip') || !have('tc')
  ? 'needs root, ip and tc (iproute2)'
  : false;

const run = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });

let server;
let plain;
let confined;
let dir;

function removeNamespace() {
  try {
    run('ip', ['netns', 'del', netns]);
  } catch {
    // not there
  }
  try {
    run('ip', ['link', 'del', hostSide]);
  } catch {
    // went with the namespace
  }
}

before(async () => {
  if (skip) return;
  removeNamespace();
  run('ip', ['netns', 'add', netns]);
  run('ip', ['link', 'add', hostSide, 'type', 'veth', 'peer', 'name', nsSide]);
  run('ip', ['link', 'set', nsSide, 'netns', netns]);
  run('ip', ['addr', 'add', `${hostIp}/30`, 'dev', hostSide]);
  run('ip', ['link', 'set', hostSide, 'up']);
  run('ip', ['-n', netns, 'addr', 'add', `${nsIp}/30`, 'dev', nsSide]);
  run('ip', ['-n', netns, 'link', 'set', nsSide, 'up']);
  run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);

  server = await startServer(['--turn', 'false', '--app-routes', 'true'], { host: hostIp });
  // Pages on http://10.x are not a secure context: let them have a camera.
  const flags = [...CHROMIUM_FLAGS, `--unsafely-treat-insecure-origin-as-secure=${server.url}`];
  dir = mkdtempSync(path.join(os.tmpdir(), 'salon-e2e-scdl-'));
  const wrapper = path.join(dir, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${netns} ${process.env.CHROMIUM || '/usr/bin/chromium'} "$@"\n`);
  chmodSync(wrapper, 0o755);
  plain = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: flags });
  confined = await chromium.launch({ executablePath: wrapper, headless: true, args: flags });
});

after(async () => {
  await confined?.close();
  await plain?.close();
  await server?.stop();
  if (!skip) removeNamespace();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (process.env.SALON_E2E_SERVER_LOG && server) console.log(server.log.join(''));
});

async function sdkPage(browser, identity) {
  const page = await newPage(browser, server);
  page.identity = identity;
  await page.goto(`${server.url}/e2e/blank.html`);
  await page.evaluate(async () => {
    window.Video = await import('/sdk/salon-video.js');
  });
  return page;
}

/** Connect; publish a 960x540 simulcast camera, or render the first remote video at 960x540. */
async function join(page, room, publish) {
  const token = await server.token(page.identity);
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

describe('simulcast under a limited downlink', { skip }, () => {
  test(`a subscriber behind ${RATE} gets a low layer, one on the open network the top layer`, async () => {
    const alice = await sdkPage(plain, 'alice');
    const bob = await sdkPage(plain, 'bob');
    const carol = await sdkPage(confined, 'carol');
    // What leaves the host into the namespace is the subscriber's downlink:
    // shaped once the SDK is loaded (it would take seconds at this rate).
    run('tc', ['qdisc', 'add', 'dev', hostSide, 'root', 'tbf', 'rate', RATE, 'burst', '16kbit', 'latency', '200ms']);
    try {
      await join(alice, 'downlink', true);
      await join(bob, 'downlink', false);
      await join(carol, 'downlink', false);
      await eventually(async () => (await received(bob)).width === 960, 'bob to get the top layer', 30_000);
      // A new subscriber starts on the lowest layer, and the estimate
      // starts at 1.5 Mbit/s: carol goes up first, until her link's queue
      // and losses bring the estimate down (a few seconds).
      await sleep(10_000);
      await eventually(async () => {
        const r = await received(carol);
        return r.decoded > 0 && r.width > 0 && r.width <= 480;
      }, 'carol to decode a low layer', 30_000);
      // And it stays low while frames keep coming (no probe pushes it up
      // past what the link carries for long).
      const before = await received(carol);
      await sleep(5_000);
      const later = await received(carol);
      assert.ok(later.decoded > before.decoded, 'carol keeps decoding');
      assert.ok(later.width <= 480, `carol stays low (width ${later.width})`);
      assert.equal((await received(bob)).width, 960, 'bob still on the top layer');
      console.log(`simulcast-downlink: bob ${(await received(bob)).width} wide, carol behind ${RATE} ${later.width} wide, ${later.decoded - before.decoded} frames in 5 s`);
    } finally {
      await alice.close();
      await bob.close();
      await carol.close();
    }
  });
});
