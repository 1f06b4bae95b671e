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
    const subscribed = (track, publication) => {
      if (track.kind !== 'video' || t.video) return;
      t.video = track;
      track.attach();
      for (const event of ['switchedOff', 'switchedOn']) track.on(event, log(`track.${event}`));
      for (const event of ['trackSwitchedOff', 'trackSwitchedOn', 'publishPriorityChanged']) publication.on(event, log(`publication.${event}`));
    };
    t.room.on('trackSubscribed', subscribed);
    t.room.participants.forEach((p) => p.videoTracks.forEach((publication) => publication.track && subscribed(publication.track, publication)));
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

      // Not allowed unless manual (alice has no bandwidth profile).
      await eventually(() => alice.evaluate(() => Boolean(window.t.video)), 'alice to subscribe to bob');
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

  test('auto mode: a track subscribed but never attached is switched off; attaching it in the page switches it on', async () => {
    const alice = await sdkPage(browser, server, 'alice');
    const bob = await sdkPage(browser, server, 'bob');
    try {
      await join(alice, 'auto-unattached', { audio: false });
      const token = await server.token('bob');
      await bob.evaluate(async ({ token }) => {
        const t = { events: [] };
        window.t = t;
        t.room = await window.Video.connect(token, { name: 'auto-unattached', audio: false, video: false, bandwidthProfile: { video: { mode: 'grid' } } });
        t.room.on('trackSubscribed', (track) => {
          if (track.kind !== 'video') return;
          t.video = track;
          for (const event of ['switchedOff', 'switchedOn']) track.on(event, () => t.events.push(event));
        });
      }, { token });
      await eventually(() => bob.evaluate(() => Boolean(window.t.video)), 'bob to subscribe to alice');
      await eventually(() => bob.evaluate(() => window.t.video.isSwitchedOff), 'the unattached track to be switched off');
      assert.equal(await bob.evaluate(() => window.t.video.switchOffReason), 'disabled-by-subscriber');
      const off = await framesDecoded(bob);
      await sleep(1_000);
      assert.ok((await framesDecoded(bob)) - off <= 1, 'no frames while it is off');
      await bob.evaluate(() => {
        const el = window.t.video.attach();
        el.style.width = '160px';
        el.style.height = '90px';
        document.body.appendChild(el);
      });
      await eventually(() => bob.evaluate(() => !window.t.video.isSwitchedOff), 'the attached track to be switched on');
      await eventually(async () => (await framesDecoded(bob)) > off, 'frames once attached');
      assert.deepEqual([...alice.errors, ...bob.errors], []);
    } finally {
      await alice.close();
      await bob.close();
    }
  });

  test('auto mode: hiding the only element switches the track off, showing it switches it on', async () => {
    const alice = await sdkPage(browser, server, 'alice');
    const bob = await sdkPage(browser, server, 'bob');
    try {
      await join(alice, 'auto-switch', { audio: false });
      await join(bob, 'auto-switch', { audio: false, bandwidthProfile: { video: { mode: 'grid' } } });
      // Its element is not in the page yet, so the track may be switched
      // off before its first frame (Twilio's auto control): wait for the
      // subscription only, and for frames once the element is in.
      await eventually(() => bob.evaluate(() => Boolean(window.t.video)), 'bob to subscribe to alice');
      const manual = await bob.evaluate(() => {
        try {
          window.t.video.switchOff();
          return 'accepted';
        } catch (e) {
          return e.message;
        }
      });
      assert.match(manual, /clientTrackSwitchOffControl/, 'switchOff() is refused in auto mode');
      await bob.evaluate(() => {
        const el = window.t.video._elements[0];
        el.style.width = '160px';
        el.style.height = '90px';
        document.body.appendChild(el);
      });
      // An element outside the document is not visible either: on once it is in.
      await eventually(() => bob.evaluate(() => !window.t.video.isSwitchedOff), 'the track in the page to be on');
      await eventually(async () => (await framesDecoded(bob)) > 0, 'bob to decode alice');
      await bob.evaluate(() => {
        window.t.video._elements[0].style.display = 'none';
      });
      await eventually(() => bob.evaluate(() => window.t.video.isSwitchedOff), 'the hidden track to be switched off');
      assert.equal(await bob.evaluate(() => window.t.video.switchOffReason), 'disabled-by-subscriber');
      await bob.evaluate(() => {
        window.t.video._elements[0].style.display = '';
      });
      await eventually(() => bob.evaluate(() => !window.t.video.isSwitchedOff), 'the shown track to be switched on');
      const stopped = await framesDecoded(bob);
      await eventually(async () => (await framesDecoded(bob)) > stopped, 'frames again once shown');
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
        // Switch-off control manual too: in the automatic mode the track,
        // attached to no element in the page, would be switched off as
        // invisible, racing the first decoded frame this test waits for.
        bandwidthProfile: { video: { mode: 'grid', contentPreferencesMode: 'manual', clientTrackSwitchOffControl: 'manual' } },
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

describe('dominant speaker and network quality', () => {
  let toneBrowser;
  before(async () => {
    toneBrowser = await launchBrowser({ tone: true });
  });
  after(async () => {
    await toneBrowser?.close();
  });

  test('the dominant speaker is the one whose audio is on; network quality arrives for local and remote', async () => {
    const alice = await sdkPage(toneBrowser, server, 'alice');
    const bob = await sdkPage(toneBrowser, server, 'bob');
    const connectBoth = async (page, speaking) => {
      const token = await server.token(page.identity);
      await page.evaluate(async ({ token, speaking }) => {
        const t = { speakers: [], local: [], remote: [] };
        window.t = t;
        const audio = await window.Video.createLocalAudioTrack();
        if (!speaking) audio.disable();
        t.room = await window.Video.connect(token, {
          name: 'speakers', tracks: [audio], dominantSpeaker: true, networkQuality: { local: 1, remote: 1 },
        });
        t.room.on('dominantSpeakerChanged', (p) => t.speakers.push(p ? p.identity : null));
        t.room.localParticipant.on('networkQualityLevelChanged', (level) => t.local.push(level));
        const watch = (p) => p.on('networkQualityLevelChanged', (level) => t.remote.push([p.identity, level]));
        t.room.participants.forEach(watch);
        t.room.on('participantConnected', watch);
      }, { token, speaking });
    };
    try {
      await connectBoth(alice, true);
      await connectBoth(bob, false);
      // Bob hears alice's tone and his own track is muted: alice holds the floor.
      await eventually(() => bob.evaluate(() => window.t.room.dominantSpeaker?.identity === 'alice'), 'bob to see alice as the dominant speaker', 20_000);
      const seen = await bob.evaluate(() => window.t.speakers);
      assert.ok(seen.includes('alice') && !seen.includes('bob'), `bob's dominantSpeakerChanged: ${JSON.stringify(seen)}`);
      // Alice is not her own dominant speaker (a RemoteParticipant), and bob never is.
      assert.ok(!(await alice.evaluate(() => window.t.speakers)).includes('bob'));

      for (const page of [alice, bob]) {
        const other = page === alice ? 'bob' : 'alice';
        await eventually(() => page.evaluate(() => window.t.local.length > 0), `${page.identity}'s own network quality`, 15_000);
        await eventually(() => page.evaluate((other) => window.t.remote.some(([who]) => who === other), other), `${page.identity} to hear ${other}'s network quality`, 15_000);
        const levels = await page.evaluate(() => ({ level: window.t.room.localParticipant.networkQualityLevel, local: window.t.local }));
        assert.ok(levels.level >= 0 && levels.level <= 5, JSON.stringify(levels));
      }
      assert.deepEqual([...alice.errors, ...bob.errors], []);
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});
