// The twilio-video API as Twilio's example apps (twilio/video-quickstart-js)
// use it, in our own code: the quickstart's device choice, join, pinning
// and rejoining; local media controls; screen sharing; changing devices
// while published; snapshots; bandwidth caps. Each test names the example
// whose uses it covers, and the remote reconnection example's one reach
// into twilio-video's private objects, which Salon's SDK keeps. (The
// examples themselves were run by hand, with only their import changed:
// see DEVELOPERS.md.)
//
//   node --test tests/e2e/examples.test.mjs      (needs target/debug/salon; see DEVELOPERS.md)

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertReceiving, eventually, inbound, launchBrowser, sdkPage, sleep, startServer } from './harness.mjs';

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

/** A page with the SDK, a token server of its own (window.token(identity)) and no room yet. */
async function examplePage(identity) {
  const page = await sdkPage(browser, server, identity);
  await page.exposeFunction('token', (name) => server.token(name));
  return page;
}

describe('the quickstart\'s uses', () => {
  test('chosen devices, its connect options, pinning, leaving and joining again', async () => {
    const room = 'e2e-quickstart';
    const pages = [await examplePage('alice'), await examplePage('bob')];
    const join = (page) => page.evaluate(async (room) => {
      const Video = window.Video;
      Video.Logger.getLogger('twilio-video').setLevel('debug');
      // selectmedia.js: the first device of each kind, by deviceId.
      const devices = await navigator.mediaDevices.enumerateDevices();
      const deviceIds = {
        audio: devices.find((d) => d.kind === 'audioinput').deviceId,
        video: devices.find((d) => d.kind === 'videoinput').deviceId,
      };
      // The camera alone, as twilio-video gives it: the preview is a video.
      const previews = await Video.createLocalTracks({ video: { deviceId: deviceIds.video } });
      previews.forEach((t) => t.stop());
      const micOnly = await Video.createLocalTracks({ audio: { deviceId: deviceIds.audio } });
      micOnly.forEach((t) => t.stop());
      window.previewKinds = [previews.map((t) => t.kind), micOnly.map((t) => t.kind)];
      // index.js: its ConnectOptions.
      const options = {
        bandwidthProfile: { video: { dominantSpeakerPriority: 'high', mode: 'collaboration', clientTrackSwitchOffControl: 'auto', contentPreferencesMode: 'auto' } },
        dominantSpeaker: true,
        preferredVideoCodecs: [{ codec: 'VP8', simulcast: true }],
        video: { height: 720, frameRate: 24, width: 1280, deviceId: { exact: deviceIds.video } },
        audio: { deviceId: { exact: deviceIds.audio } },
        name: room,
      };
      const joined = await Video.connect(await window.token(document.title || 'someone'), options);
      window.room = joined;
      // joinroom.js: a container per participant with <audio> and <video> made beforehand.
      const container = (participant) => {
        const div = document.createElement('div');
        div.dataset.identity = participant.identity;
        div.innerHTML = '<audio autoplay></audio><video autoplay muted playsinline></video>';
        document.body.appendChild(div);
        const onTrack = (track) => track.kind !== 'data' && track.attach(div.querySelector(track.kind));
        participant.tracks.forEach((publication) => {
          if (publication.track) onTrack(publication.track);
          publication.on('subscribed', onTrack);
          publication.on('unsubscribed', (track) => {
            const element = div.querySelector(track.kind);
            track.detach(element);
            element.srcObject = null;
          });
        });
        participant.on('trackPublished', (publication) => publication.on('subscribed', onTrack));
      };
      container(joined.localParticipant);
      joined.participants.forEach(container);
      joined.on('participantConnected', container);
      joined.on('participantDisconnected', (p) => document.querySelector(`[data-identity="${p.identity}"]`)?.remove());
      const localVideo = Array.from(joined.localParticipant.videoTracks.values())[0].track;
      return { dominantSpeaker: joined.dominantSpeaker, localVideo: localVideo.name !== undefined };
    }, room);
    for (const [page, identity] of [[pages[0], 'alice'], [pages[1], 'bob']]) {
      await page.evaluate((t) => { document.title = t; }, identity);
      assert.deepEqual(await join(page), { dominantSpeaker: null, localVideo: true });
    }
    const [alice, bob] = pages;
    const shows = (page, who) => page.evaluate((w) => document.querySelector(`[data-identity="${w}"] video`)?.videoWidth > 0, who);
    await eventually(() => shows(alice, 'bob'), 'alice to show bob in his container');
    await eventually(() => shows(bob, 'alice'), 'bob to show alice in her container');
    await assertReceiving(alice, { videos: 1, audios: 1 });
    // selectmedia.js's previews: one device, one track of its kind.
    assert.deepEqual(await alice.evaluate(() => window.previewKinds), [['video'], ['audio']]);
    // Pinning (setVideoPriority): the remote video track's priority.
    const pinned = await alice.evaluate(() => {
      const [bobs] = window.room.participants.values();
      bobs.videoTracks.forEach((publication) => publication.track && publication.track.setPriority('high'));
      const priority = [...bobs.videoTracks.values()][0].track.priority;
      bobs.videoTracks.forEach((publication) => publication.track && publication.track.setPriority(null));
      return [priority, [...bobs.videoTracks.values()][0].track.priority];
    });
    assert.deepEqual(pinned, ['high', null]);
    // Leave, and join again from the same page (the quickstart loops back to its join modal).
    await bob.evaluate(() => window.room.disconnect());
    await eventually(() => alice.evaluate(() => !document.querySelector('[data-identity="bob"]')), 'bob\'s container to go');
    await bob.evaluate(() => document.querySelectorAll('[data-identity]').forEach((el) => el.remove()));
    await join(bob);
    await eventually(() => shows(alice, 'bob'), 'alice to show bob again');
    await eventually(() => shows(bob, 'alice'), 'bob to show alice again');
    for (const page of pages) {
      await page.evaluate(() => window.room.disconnect());
      await page.close();
    }
  });
});

describe('the local media controls and screen share examples\' uses', () => {
  test('connect(token) with no options; disable/enable seen as track events; a screen published, stopped, unpublished', async () => {
    const p1 = await examplePage('p1');
    const p2 = await examplePage('p2');
    const roomName = await p1.evaluate(async () => {
      window.room = await window.Video.connect(await window.token('p1'));
      return window.room.name;
    });
    await p2.evaluate(async (name) => {
      window.seen = [];
      window.room = await window.Video.connect(await window.token('p2'), { name, tracks: [] });
      window.room.on('trackSubscribed', (track) => {
        window.seen.push(`subscribed ${track.kind} ${track.isEnabled}`);
        track.on('disabled', () => window.seen.push(`disabled ${track.kind}`));
        track.on('enabled', () => window.seen.push(`enabled ${track.kind}`));
      });
      window.room.on('trackPublished', (publication) => {
        window.seen.push(`published ${publication.kind}`);
        publication.on('subscribed', (track) => { window.screen = track.attach(); document.body.appendChild(window.screen); });
      });
      window.room.on('trackUnpublished', (publication) => window.seen.push(`unpublished ${publication.kind}`));
    }, roomName);
    await eventually(() => p2.evaluate(() => window.seen.includes('subscribed video true') && window.seen.includes('subscribed audio true')), 'p2 to subscribe to p1\'s camera and microphone');
    // muteYourAudio / muteYourVideo, then unmute.
    await p1.evaluate(() => {
      for (const kind of ['audioTracks', 'videoTracks']) window.room.localParticipant[kind].forEach((publication) => publication.track.disable());
    });
    await eventually(() => p2.evaluate(() => window.seen.includes('disabled audio') && window.seen.includes('disabled video')), 'disabled on p2');
    await p1.evaluate(() => {
      for (const kind of ['audioTracks', 'videoTracks']) window.room.localParticipant[kind].forEach((publication) => publication.track.enable());
    });
    await eventually(() => p2.evaluate(() => window.seen.includes('enabled audio') && window.seen.includes('enabled video')), 'enabled on p2');

    // createScreenTrack: getDisplayMedia, wrapped; unpublished when it stops.
    await p1.evaluate(async () => {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { height: 720, width: 1280 } });
      const screen = new window.Video.LocalVideoTrack(stream.getVideoTracks()[0]);
      await window.room.localParticipant.publishTrack(screen);
      screen.on('stopped', () => window.room.localParticipant.unpublishTrack(screen));
      window.screenTrack = screen;
    });
    await eventually(() => p2.evaluate(() => window.screen && window.screen.videoWidth > 0), 'p2 to show the shared screen');
    await p1.evaluate(() => window.screenTrack.stop());
    await eventually(() => p2.evaluate(() => window.seen.filter((s) => s === 'unpublished video').length === 1), 'the screen to be unpublished');
    for (const page of [p1, p2]) {
      await page.evaluate(() => window.room.disconnect());
      await page.close();
    }
  });
});

describe('the media devices, snapshot and bandwidth constraints examples\' uses', () => {
  test('restart() with a deviceId while published; a photo of the local track; maxVideoBitrate and setParameters cap what is sent', async () => {
    const room = 'e2e-devices';
    const publisher = await examplePage('devices');
    const viewer = await examplePage('viewer');
    await viewer.evaluate(async (name) => {
      window.room = await window.Video.connect(await window.token('viewer'), { name, tracks: [] });
    }, room);
    await publisher.evaluate(async (name) => {
      const [camera] = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
      window.camera = await window.Video.createLocalVideoTrack({ deviceId: { exact: camera.deviceId } });
      window.microphone = await window.Video.createLocalAudioTrack();
      window.room = await window.Video.connect(await window.token('devices'), { name, tracks: [window.camera, window.microphone], maxVideoBitrate: 100_000 });
    }, room);
    await assertReceiving(viewer, { videos: 1, audios: 1 });
    /** kbit/s the publisher sends on video, over 3 s. */
    const sending = () => publisher.evaluate(async () => {
      const pc = window.__e2e.pcs.find((p) => p.connectionState === 'connected');
      const bytes = async () => { let b = 0; (await pc.getStats()).forEach((s) => { if (s.type === 'outbound-rtp' && s.kind === 'video') b += s.bytesSent; }); return b; };
      const a = await bytes();
      await new Promise((r) => setTimeout(r, 3000));
      return ((await bytes()) - a) * 8 / 3000;
    });
    const capped = await sending();
    assert.ok(capped < 100 * 1.3, `maxVideoBitrate 100 kbps: sends ${capped} kbit/s`);
    await publisher.evaluate(() => window.room.localParticipant.setParameters({ maxVideoBitrate: 40_000 }));
    await sleep(2000);
    const lower = await sending();
    assert.ok(lower < 40 * 1.3, `setParameters 40 kbps: sends ${lower} kbit/s`);

    // applyInputDeviceSelection: restart() on the published track.
    const before = (await inbound(viewer)).find((s) => s.kind === 'video').framesDecoded;
    await publisher.evaluate(async () => {
      const [camera] = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
      await window.camera.restart({ deviceId: { exact: camera.deviceId } });
    });
    await eventually(async () => (await inbound(viewer)).find((s) => s.kind === 'video').framesDecoded > before + 15, 'the viewer to go on decoding after restart()');
    // takeLocalVideoSnapshot: ImageCapture on the track's MediaStreamTrack, sized by its dimensions.
    const photo = await publisher.evaluate(async () => {
      const blob = await new ImageCapture(window.camera.mediaStreamTrack).takePhoto();
      const image = await createImageBitmap(blob);
      return { live: window.camera.mediaStreamTrack.readyState, width: image.width, dimensions: window.camera.dimensions.width };
    });
    assert.equal(photo.live, 'live');
    assert.ok(photo.width > 0 && photo.dimensions > 0, JSON.stringify(photo));
    // setupBitrateGraph: bytesReceived and timestamp from getStats().
    const stats = await viewer.evaluate(async () => (await window.room.getStats())[0].remoteVideoTrackStats[0]);
    assert.ok(stats.bytesReceived > 0 && stats.timestamp > 0, JSON.stringify(stats));
    for (const page of [publisher, viewer]) {
      await page.evaluate(() => window.room.disconnect());
      await page.close();
    }
  });
});

describe('the remote reconnection example\'s uses', () => {
  test('room._signaling._transport._twilioConnection._close() drops the socket: reconnecting, reconnected, and the other side sees it', async () => {
    const room = 'e2e-remote-reconnection';
    const pages = [await examplePage('p1'), await examplePage('p2')];
    try {
      for (const page of pages) {
        await page.evaluate(async ({ room, identity }) => {
          const Video = window.Video;
          window.events = [];
          window.room = await Video.connect(await window.token(identity), { name: room, region: 'au1', audio: true, video: { width: 160, height: 120 } });
          const local = window.room.localParticipant;
          local.on('reconnecting', () => window.events.push(['local reconnecting', local.state]));
          local.on('reconnected', () => window.events.push(['local reconnected', local.state]));
          window.room.on('participantReconnecting', (p) => window.events.push(['participantReconnecting', p.identity, p.state]));
          window.room.on('participantReconnected', (p) => window.events.push(['participantReconnected', p.identity, p.state]));
          window.room.on('participantDisconnected', (p) => window.events.push(['participantDisconnected', p.identity]));
        }, { room, identity: pages.indexOf(page) === 0 ? 'p1' : 'p2' });
      }
      await eventually(() => pages[0].evaluate(() => window.room.participants.size === 1), 'p1 to see p2');
      // The example's "Simulate reconnection" button for P1.
      await pages[0].evaluate(() => window.room._signaling._transport._twilioConnection._close({ code: 4999, reason: 'simulate-reconnect' }));
      const events = (page) => page.evaluate(() => window.events);
      await eventually(async () => (await events(pages[1])).length >= 2, 'p2 to see p1 reconnect');
      assert.deepEqual(await events(pages[1]), [['participantReconnecting', 'p1', 'reconnecting'], ['participantReconnected', 'p1', 'connected']]);
      await eventually(async () => (await events(pages[0])).length >= 2, 'p1 to reconnect');
      assert.deepEqual(await events(pages[0]), [['local reconnecting', 'reconnecting'], ['local reconnected', 'connected']]);
      assert.equal(await pages[0].evaluate(() => window.room.state), 'connected');
    } finally {
      for (const page of pages) await page.close();
    }
  });
});
