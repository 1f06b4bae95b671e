// Adaptive video through the SDK (#9): switchOff()/switchOn() with events on
// both sides and frames stopping and resuming, publish priorities round
// trip, and the adaptive settings connect() sends.
//
//   node --test tests/e2e/adaptive.test.mjs      (needs target/debug/salon; see DEVELOPERS.md)

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { eventually, inbound, launchBrowser, sdkPage, startServer } from './harness.mjs';

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

/** Connect a page; its room, events and tracks go on `window.t`. */
async function join(page, room, options) {
  const token = await server.token(page.identity);
  await page.evaluate(async ({ token, room, options }) => {
    const t = { events: [] };
    window.t = t;
    const video = await window.Video.createLocalVideoTrack({ width: 320, height: 180, frameRate: 15 });
    t.room = await window.Video.connect(token, { name: room, tracks: [video], ...options });
    const log = (what) => (...args) => t.events.push([what, ...args.map((a) => (a && typeof a === 'object' ? a.constructor.name : a))]);
    for (const event of ['trackSwitchedOff', 'trackSwitchedOn', 'trackPublishPriorityChanged']) t.room.on(event, log(`room.${event}`));
    t.room.on('participantConnected', (p) => {
      for (const event of ['trackSwitchedOff', 'trackSwitchedOn', 'trackPublishPriorityChanged']) p.on(event, log(`participant.${event}`));
    });
    t.room.participants.forEach((p) => {
      for (const event of ['trackSwitchedOff', 'trackSwitchedOn', 'trackPublishPriorityChanged']) p.on(event, log(`participant.${event}`));
    });
    t.room.on('trackSubscribed', (track, publication) => {
      if (track.kind !== 'video') return;
      t.video = track;
      track.attach();
      for (const event of ['switchedOff', 'switchedOn']) track.on(event, log(`track.${event}`));
      for (const event of ['trackSwitchedOff', 'trackSwitchedOn', 'publishPriorityChanged']) publication.on(event, log(`publication.${event}`));
    });
  }, { token, room, options });
}

const framesDecoded = async (page) => (await inbound(page)).filter((s) => s.kind === 'video').reduce((n, s) => n + s.framesDecoded, 0);

describe('adaptive video', () => {
  test('switchOff() stops the frames and fires switchedOff on track, publication, participant and room; switchOn() brings them back', async () => {
    const alice = await sdkPage(browser, server, 'alice');
    const bob = await sdkPage(browser, server, 'bob');
    try {
      await join(alice, 'switch-off', { audio: false });
      await join(bob, 'switch-off', {
        audio: false,
        bandwidthProfile: { video: { clientTrackSwitchOffControl: 'manual', contentPreferencesMode: 'manual' } },
      });
      await eventually(async () => (await framesDecoded(bob)) > 0, 'bob to decode alice');

      // Not allowed in auto mode (alice has no bandwidth profile: disabled).
      const auto = await alice.evaluate(() => {
        try {
          window.t.video?.switchOff();
          return window.t.video ? 'accepted' : 'no track';
        } catch (e) {
          return e.message;
        }
      });
      assert.match(auto, /clientTrackSwitchOffControl/);

      await bob.evaluate(() => window.t.video.switchOff());
      await eventually(() => bob.evaluate(() => window.t.video.isSwitchedOff), 'isSwitchedOff');
      const off = await bob.evaluate(() => ({ events: window.t.events, reason: window.t.video.switchOffReason }));
      assert.equal(off.reason, 'disabled-by-subscriber');
      for (const what of ['track.switchedOff', 'publication.trackSwitchedOff', 'participant.trackSwitchedOff', 'room.trackSwitchedOff']) {
        assert.ok(off.events.some((e) => e[0] === what), `${what} in ${JSON.stringify(off.events)}`);
      }
      // Frames stop: the count settles (in-flight frames drain first).
      await sleep(500);
      const stopped = await framesDecoded(bob);
      await sleep(1_500);
      assert.equal(await framesDecoded(bob), stopped, 'no frames decoded while switched off');

      await bob.evaluate(() => window.t.video.switchOn());
      await eventually(() => bob.evaluate(() => !window.t.video.isSwitchedOff), 'switched on');
      const on = await bob.evaluate(() => window.t.events.map((e) => e[0]));
      for (const what of ['track.switchedOn', 'publication.trackSwitchedOn', 'participant.trackSwitchedOn', 'room.trackSwitchedOn']) {
        assert.ok(on.includes(what), `${what} in ${JSON.stringify(on)}`);
      }
      await eventually(async () => (await framesDecoded(bob)) > stopped, 'frames again after switchOn()');
      assert.deepEqual([...alice.errors, ...bob.errors], []);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  test('setContentPreferences() and setPriority() are checked and accepted by the server', async () => {
    const alice = await sdkPage(browser, server, 'alice');
    const bob = await sdkPage(browser, server, 'bob');
    try {
      await join(alice, 'priorities', { audio: false });
      await join(bob, 'priorities', {
        audio: false,
        bandwidthProfile: { video: { mode: 'grid', contentPreferencesMode: 'manual' } },
        networkQuality: { local: 2, remote: 1 },
        dominantSpeaker: true,
      });
      await eventually(async () => (await framesDecoded(bob)) > 0, 'bob to decode alice');
      const result = await bob.evaluate(() => {
        const track = window.t.video;
        track.setContentPreferences({ renderDimensions: { width: 160, height: 90 } });
        track.setPriority('high');
        let bad;
        try {
          track.setPriority('urgent');
        } catch (e) {
          bad = e.constructor.name;
        }
        return { priority: track.priority, bad };
      });
      assert.deepEqual(result, { priority: 'high', bad: 'RangeError' });
      await alice.evaluate(() => [...window.t.room.localParticipant.videoTracks.values()][0].setPriority('high'));
      // The server refuses what makes no sense with a logged error: none here.
      await sleep(1_000);
      assert.deepEqual([...alice.errors, ...bob.errors], []);
      assert.equal(await bob.evaluate(() => window.t.room.state), 'connected');
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});
