// Simulcast through the SDK (#9): a publisher with
// `preferredVideoCodecs: [{codec: 'VP8', simulcast: true}]` sends RID
// layers of a 960x540 camera (240, 480 and 960 wide); a subscriber that
// renders the track small receives the low layer (its decoded frame
// width), rendering it large the top layer, with frames decoding across the
// switches; a subscriber whose maxSubscriptionBitrate is low receives a
// layer below the top one. A 640x360 camera gives two layers (320 and 640 wide), as
// libwebrtc sends no more; without simulcast asked, one encoding. With
// `{codec: 'H264', simulcast: true}` the layers are H.264 and are picked
// the same way. Layer pausing (adaptive simulcast): when the only
// subscriber renders the track at 160x90, the server's `layers` makes the
// publisher set its upper encodings `active: false` and they stop being
// sent; when it asks large, they come back and it receives the top layer.
//
//   node --test tests/e2e/simulcast.test.mjs      (needs target/debug/salon; see DEVELOPERS.md)

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { eventually, launchBrowser, sdkPage, startServer } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Connect a page; the first remote video track goes on `window.t.video`. */
async function join(page, room, options, camera) {
  const token = await server.token(page.identity);
  await page.evaluate(async ({ token, room, options, camera }) => {
    const t = {};
    window.t = t;
    const publish = Boolean(camera);
    window.__e2eCamera = camera;
    const tracks = publish ? [await window.Video.createLocalVideoTrack()] : [];
    t.room = await window.Video.connect(token, { name: room, tracks, audio: false, ...options });
    const subscribed = (track) => {
      if (track.kind !== 'video' || t.video) return;
      t.video = track;
      const el = track.attach();
      el.style.width = '640px';
      el.style.height = '360px';
      document.body.appendChild(el);
    };
    t.room.on('trackSubscribed', subscribed);
    t.room.participants.forEach((p) => p.videoTracks.forEach((publication) => publication.track && subscribed(publication.track)));
  }, { token, room, options, camera });
}

const CAMERA = { width: 960, height: 540, frameRate: 15 };
const SMALL_CAMERA = { width: 640, height: 360, frameRate: 15 };

/** The received video: frame width and frames decoded (summed over m-lines). */
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

/** What the publisher sends: each RID's frame width. */
const sent = (page) => page.evaluate(async () => {
  const out = {};
  for (const pc of window.__e2e.pcs) {
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') out[s.rid || '-'] = s.frameWidth || 0;
    });
  }
  return out;
});

/** The publisher's video encodings by RID: `active`, and bytes sent so far. */
const encodings = (page) => page.evaluate(async () => {
  const out = {};
  for (const pc of window.__e2e.pcs) {
    if (pc.connectionState === 'closed') continue;
    for (const sender of pc.getSenders()) {
      if (!sender.track || sender.track.kind !== 'video') continue;
      for (const e of sender.getParameters().encodings || []) out[e.rid || '-'] = { active: e.active, bytes: 0 };
    }
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video' && out[s.rid || '-']) out[s.rid || '-'].bytes = s.bytesSent;
    });
  }
  return out;
});

/** Frames keep coming for `ms`: framesDecoded grows in every 500 ms. */
async function keepsDecoding(page, ms) {
  let last = (await received(page)).decoded;
  for (let waited = 0; waited < ms; waited += 500) {
    await sleep(500);
    const now = (await received(page)).decoded;
    assert.ok(now > last, `frames stalled at ${now}`);
    last = now;
  }
}

/**
 * `page` renders its video at `width`×`height`: within 15 s it decodes the
 * `expected`-wide layer (`what` names the wait).
 */
async function rendersLayer(page, [width, height], expected, what) {
  await page.evaluate((size) => window.t.video.setContentPreferences({ renderDimensions: size }), { width, height });
  await eventually(async () => {
    const r = await received(page);
    return r.decoded > 0 && r.width === expected;
  }, what, 15_000);
}

const SIMULCAST = { preferredVideoCodecs: [{ codec: 'VP8', simulcast: true }] };
const MANUAL = { bandwidthProfile: { video: { contentPreferencesMode: 'manual', clientTrackSwitchOffControl: 'manual' } } };

/** Wait until `page` publishes `count` layers, the largest `top` wide; their widths by RID. */
async function layersSent(page, count, top) {
  await eventually(async () => {
    const widths = Object.values(await sent(page));
    return widths.length === count && widths.every((w) => w > 0) && Math.max(...widths) === top;
  }, `${count} layers up to ${top} wide`, 20_000);
  return sent(page);
}

describe('simulcast', () => {
  test('render dimensions pick the layer: small gets the low layer, large the top one, frames decoding throughout; a low maxSubscriptionBitrate keeps it below the top layer', async () => {
    const alice = await sdkPage(browser, server, 'alice');
    const bob = await sdkPage(browser, server, 'bob');
    const carol = await sdkPage(browser, server, 'carol');
    try {
      await join(alice, 'simulcast', SIMULCAST, CAMERA);
      const layers = await layersSent(alice, 3, 960);
      assert.deepEqual(Object.values(layers).sort((a, b) => a - b), [240, 480, 960]);

      await join(bob, 'simulcast', MANUAL);
      await eventually(() => bob.evaluate(() => Boolean(window.t.video)), 'bob to subscribe');
      await rendersLayer(bob, [160, 90], 240, 'bob to decode the 240-wide layer');
      await keepsDecoding(bob, 1_500);

      await rendersLayer(bob, [960, 540], 960, 'bob to get the top layer');
      await keepsDecoding(bob, 2_000);

      await rendersLayer(bob, [480, 270], 480, 'bob on the middle layer');
      await keepsDecoding(bob, 1_500);

      // The low layer runs at ~50–110 kbit/s, the middle one ~70–220, the
      // top one ~160–580 (they vary with the encoder's own estimate).
      await join(carol, 'simulcast', { bandwidthProfile: { video: { maxSubscriptionBitrate: 130_000 } } });
      await eventually(async () => {
        const r = await received(carol);
        return r.decoded > 0 && r.width > 0 && r.width <= 480;
      }, 'carol to decode a low layer', 15_000);
      await sleep(3_000);
      const capped = await received(carol);
      assert.ok(capped.width > 0 && capped.width <= 480, `carol stays below the top layer under her cap (width ${capped.width})`);
      await keepsDecoding(carol, 1_500);
      console.log(`simulcast: alice sends ${JSON.stringify(layers)}; bob 240 → 960 → 480 by render dimensions; carol capped at 130 kbit/s: ${capped.width}`);
      assert.deepEqual([...alice.errors, ...bob.errors, ...carol.errors], []);
    } finally {
      await alice.close();
      await bob.close();
      await carol.close();
    }
  });

  test('layer pausing: the only subscriber rendering 160x90 pauses the upper encodings (active: false, no more bytes; still after a renegotiation), rendering large resumes them and brings the top layer', async () => {
    const alice = await sdkPage(browser, server, 'alice');
    const bob = await sdkPage(browser, server, 'bob');
    const carol = await sdkPage(browser, server, 'carol');
    try {
      await join(alice, 'pausing', { preferredVideoCodecs: 'auto' }, CAMERA);
      await layersSent(alice, 3, 960);
      await join(bob, 'pausing', MANUAL);
      await eventually(() => bob.evaluate(() => Boolean(window.t.video)), 'bob to subscribe');
      await rendersLayer(bob, [160, 90], 240, 'bob to decode the 240-wide layer');
      // Unneeded for 5 s, the upper layers are paused.
      const paused = Date.now();
      await eventually(async () => {
        const e = await encodings(alice);
        return e.q?.active === true && e.h?.active === false && e.f?.active === false;
      }, 'h and f inactive, q active', 15_000);
      const pausedAfter = Date.now() - paused;
      // `active` reads false as soon as it is set; the encoder stops a
      // moment later (a frame in flight, stats cached for a while), so what
      // is sent is measured from a second after.
      await sleep(1_000);
      const before = await encodings(alice);
      await sleep(1_500);
      const later = await encodings(alice);
      assert.ok(later.f.bytes - before.f.bytes < 2_000, `f stopped (${before.f.bytes} → ${later.f.bytes} bytes)`);
      assert.ok(later.q.bytes > before.q.bytes, 'q still sent');
      await keepsDecoding(bob, 1_000);

      // A renegotiation (alice subscribes to the track of carol, who
      // subscribes to nothing) keeps the encodings paused.
      await join(carol, 'pausing', { automaticSubscription: false }, SMALL_CAMERA);
      await eventually(() => alice.evaluate(() => Boolean(window.t.video)), 'alice to receive carol', 15_000);
      const renegotiated = await encodings(alice);
      assert.deepEqual([renegotiated.q.active, renegotiated.h.active, renegotiated.f.active], [true, false, false], 'still paused after alice renegotiated');
      // The server's answer says so itself (RFC 8853's `~`), which is what
      // libwebrtc sets `active` from when it applies an answer.
      const simulcastLines = await alice.evaluate(() => window.__e2e.pcs
        .filter((pc) => pc.connectionState !== 'closed')
        .flatMap((pc) => pc.remoteDescription?.sdp.match(/^a=simulcast:.*$/gm) ?? []));
      assert.deepEqual(simulcastLines.map((l) => l.trim()), ['a=simulcast:recv q;~h;~f'], 'the answer marks h and f paused');

      const asked = Date.now();
      await rendersLayer(bob, [960, 540], 960, 'bob to get the top layer back');
      const back = Date.now() - asked;
      const resumed = await encodings(alice);
      assert.deepEqual([resumed.q.active, resumed.h.active, resumed.f.active], [true, true, true]);
      await keepsDecoding(bob, 1_500);
      console.log(`layer pausing: h and f paused ${pausedAfter} ms after bob's 240-wide layer; f stopped (+${later.f.bytes - before.f.bytes} bytes in 1.5 s); top layer back at bob ${back} ms after asking`);
      assert.deepEqual([...alice.errors, ...bob.errors, ...carol.errors], []);
    } finally {
      await alice.close();
      await bob.close();
      await carol.close();
    }
  });

  test('a 640x360 camera gives two layers, 320 and 640 wide (libwebrtc sends no more), and the subscriber gets the top one', async () => {
    const alice = await sdkPage(browser, server, 'alice');
    const bob = await sdkPage(browser, server, 'bob');
    try {
      await join(alice, 'two-layers', SIMULCAST, SMALL_CAMERA);
      const layers = await layersSent(alice, 2, 640);
      assert.deepEqual(Object.keys(layers).sort(), ['f', 'h']);
      await join(bob, 'two-layers', {});
      await eventually(async () => (await received(bob)).width === 640, 'bob to decode 640 wide', 15_000);
      await keepsDecoding(bob, 1_000);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  test('H.264 simulcast: the layers are H.264, and render dimensions pick among them as for VP8', async () => {
    const alice = await sdkPage(browser, server, 'alice');
    const bob = await sdkPage(browser, server, 'bob');
    try {
      await join(alice, 'h264-simulcast', { preferredVideoCodecs: [{ codec: 'H264', simulcast: true }] }, CAMERA);
      const layers = await layersSent(alice, 3, 960);
      const codecs = await alice.evaluate(async () => {
        const out = new Set();
        for (const pc of window.__e2e.pcs) {
          const stats = await pc.getStats();
          stats.forEach((s) => {
            if (s.type === 'outbound-rtp' && s.kind === 'video') out.add(stats.get(s.codecId)?.mimeType);
          });
        }
        return [...out];
      });
      assert.deepEqual(codecs, ['video/H264'], 'every layer is H.264');

      await join(bob, 'h264-simulcast', MANUAL);
      await eventually(() => bob.evaluate(() => Boolean(window.t.video)), 'bob to subscribe');
      await rendersLayer(bob, [160, 90], 240, 'bob to decode the 240-wide H.264 layer');
      await keepsDecoding(bob, 1_500);
      await rendersLayer(bob, [960, 540], 960, 'bob to get the top H.264 layer');
      await keepsDecoding(bob, 2_000);
      console.log(`simulcast (H.264): alice sends ${JSON.stringify(layers)}; bob 240 → 960 by render dimensions`);
      assert.deepEqual([...alice.errors, ...bob.errors], []);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  test('without simulcast asked, one encoding is sent and received at full size', async () => {
    const alice = await sdkPage(browser, server, 'alice');
    const bob = await sdkPage(browser, server, 'bob');
    try {
      await join(alice, 'plain', {}, SMALL_CAMERA);
      await join(bob, 'plain', {});
      await eventually(async () => (await received(bob)).width === 640, 'bob to decode 640 wide');
      assert.deepEqual(Object.keys(await sent(alice)), ['-'], 'one encoding, no RID');
      await keepsDecoding(bob, 1_000);
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});
