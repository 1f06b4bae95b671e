// The official twilio-video SDK against Salon's own SDK, on one Salon, side
// by side in the same Chromium (issue #11's benchmarks):
//
//  1. join time: connect() to the first remote frame presented, a joiner
//     entering a room where one participant publishes, N joins each,
//     alternating the two SDKs so the machine's noise falls on both;
//  2. the server's CPU per forwarded packet in a room of three
//     participants that publish audio and 320×240 video, all official SDK
//     against all Salon SDK, alternating, R rounds each.
//
//   bench/sdks            (builds the release binary, installs what the
//                          e2e tests need, then runs this)
//   node bench/sdks.mjs [--joins N] [--rounds R] [--seconds S]
//
// Uses tests/e2e's harness and packages (playwright-core, twilio-video).
// Prints medians; nothing is asserted (speed is measured, not tested).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { here, launchBrowser, newPage, sleep, startServer } from '../tests/e2e/harness.mjs';

const { values: opts } = parseArgs({
  options: {
    joins: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '20' },
  },
});
const JOINS = Number(opts.joins);
const ROUNDS = Number(opts.rounds);
const SECONDS = Number(opts.seconds);

const OFFICIAL = path.join(here, 'node_modules', 'twilio-video', 'dist', 'twilio-video.min.js');
const CLOCK_TICK = 100; // USER_HZ on Linux

const server = await startServer();
const browser = await launchBrowser({ tone: true });

/** A page with `window.Video` set to the SDK of `kind`, and a connect() for it. */
async function page(kind) {
  const p = await newPage(browser, server);
  await p.goto(`${server.url}/e2e/blank.html`);
  if (kind === 'official') {
    await p.addScriptTag({ path: OFFICIAL });
    await p.evaluate((wsServer) => {
      window.Video = window.Twilio.Video;
      window.join = (token, options) => window.Video.connect(token, { ...options, wsServer, insights: false });
    }, `${server.url.replace('http', 'ws')}/signaling`);
  } else {
    await p.evaluate(async () => {
      window.Video = await import('/sdk/salon-video.js');
      window.join = (token, options) => window.Video.connect(token, options);
    });
  }
  return p;
}

const median = (xs) => {
  const s = xs.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : null;
};

// ---- join time -------------------------------------------------------------------------------

async function joinTimes(kind) {
  const room = `bench-join-${kind}`;
  const publisher = await page(kind);
  await publisher.evaluate(async ({ token, room }) => {
    window.room = await window.join(token, { name: room, audio: true, video: { width: 320, height: 240 } });
  }, { token: await server.token(`publisher-${kind}`), room });
  const joiner = await page(kind);
  return {
    async once() {
      const token = await server.token(`joiner-${kind}`);
      return joiner.evaluate(async ({ token, room }) => {
        // As an app does: camera and microphone on before joining.
        window.tracks ??= await window.Video.createLocalTracks({ audio: true, video: { width: 320, height: 240 } });
        const t0 = performance.now();
        const r = await window.join(token, { name: room, tracks: window.tracks });
        const video = await new Promise((resolve) => {
          const take = (track) => track.kind === 'video' && resolve(track);
          r.on('trackSubscribed', take);
          r.participants.forEach((p) => p.videoTracks.forEach((pub) => pub.track && take(pub.track)));
        });
        // The first frame presented in the page (both SDKs' getStats() do
        // not report frames decoded alike; the element does).
        const element = video.attach();
        document.body.appendChild(element);
        const rendered = await Promise.race([
          new Promise((resolve) => element.requestVideoFrameCallback(() => resolve(performance.now() - t0))),
          new Promise((resolve) => setTimeout(() => resolve(null), 10_000)),
        ]);
        video.detach().forEach((el) => el.remove());
        r.disconnect();
        return rendered;
      }, { token, room });
    },
    async close() {
      await publisher.evaluate(() => window.room.disconnect());
      await publisher.close();
      await joiner.close();
    },
  };
}

// ---- CPU per forwarded packet ----------------------------------------------------------------

/** The server's CPU time (user + system), in seconds. */
function serverCpu() {
  const fields = readFileSync(`/proc/${server.child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICK;
}

async function forwarded() {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => /^salon_media_rtp_forwarded(_total)?(\{| )/.test(l));
  return Number(line?.split(' ').pop() ?? NaN);
}

async function cpuPerPacket(kind, round) {
  const room = `bench-cpu-${kind}-${round}`;
  const pages = [];
  for (let i = 0; i < 3; i++) {
    const p = await page(kind);
    await p.evaluate(async ({ token, room }) => {
      window.room = await window.join(token, { name: room, audio: true, video: { width: 320, height: 240, frameRate: 24 } });
      window.room.on('trackSubscribed', (track) => track.kind !== 'data' && document.body.appendChild(track.attach()));
      window.room.participants.forEach((p) => p.tracks.forEach((pub) => pub.track && pub.track.kind !== 'data' && document.body.appendChild(pub.track.attach())));
    }, { token: await server.token(`${kind}-${i}`), room });
    pages.push(p);
  }
  await sleep(5_000); // every subscription flowing, bitrates ramped
  const [cpu0, sent0] = [serverCpu(), await forwarded()];
  await sleep(SECONDS * 1_000);
  const [cpu1, sent1] = [serverCpu(), await forwarded()];
  for (const p of pages) {
    await p.evaluate(() => window.room.disconnect()).catch(() => {});
    await p.close();
  }
  await sleep(1_000);
  const packets = sent1 - sent0;
  return { packets, perSecond: packets / SECONDS, cpu: cpu1 - cpu0, perPacket: ((cpu1 - cpu0) / packets) * 1e6 };
}

try {
  const official = await joinTimes('official');
  const salon = await joinTimes('salon');
  const joins = { official: [], salon: [] };
  for (let i = 0; i < JOINS; i++) {
    joins.official.push(await official.once());
    await sleep(300);
    joins.salon.push(await salon.once());
    await sleep(300);
  }
  await official.close();
  await salon.close();
  const round = (x) => (x === null ? 'none' : Math.round(x));
  for (const kind of ['official', 'salon']) {
    console.log(`join ${kind}: ${joins[kind].map(round).join(' ')} ms; median ${round(median(joins[kind]))} ms`);
  }

  const cpu = { official: [], salon: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const kind of ['official', 'salon']) {
      const m = await cpuPerPacket(kind, r);
      cpu[kind].push(m);
      console.log(`cpu ${kind} round ${r + 1}: ${m.packets} packets forwarded (${Math.round(m.perSecond)}/s), server CPU ${m.cpu.toFixed(2)} s, ${m.perPacket.toFixed(1)} µs per forwarded packet`);
    }
  }
  const perPacket = (kind) => median(cpu[kind].map((m) => m.perPacket));
  console.log(`server CPU per forwarded packet, median of ${ROUNDS}: official SDK ${perPacket('official').toFixed(1)} µs, Salon SDK ${perPacket('salon').toFixed(1)} µs (ratio ${(perPacket('official') / perPacket('salon')).toFixed(2)})`);
} finally {
  await browser.close();
  await server.stop();
}
