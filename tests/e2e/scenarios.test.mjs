// Salon's browser SDK and demo app in real Chromium with real WebRTC.
//
// One Salon server and one headless Chromium for the whole run; every
// participant is a page in its own browser context, with the fake camera
// (320x240) and microphone. The scenarios run in order and some build on
// the previous ones (the late joiner joins the call the first scenario
// started), as a person trying Salon would.
//
//   node --test --test-concurrency=1 tests/e2e/scenarios.test.mjs
//
// Needs target/debug/salon (or $SALON_BIN) and /usr/bin/chromium (or
// $CHROMIUM); see DEVELOPERS.md. Artifacts (the call's screenshot) go to
// target/e2e/ (or $SALON_E2E_ARTIFACTS).

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  artifacts, assertReceiving, eventually, launchBrowser, leftovers, newPage, outcome, sdkPage as openSdkPage, sleep, startServer, tcpProxy,
} from './harness.mjs';


let server;
let browser;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  // A 10 s session timeout (30 s by default), so the reconnection
  // scenario's give-up comes sooner.
  server = await startServer(['--session-timeout', '10']);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (process.env.SALON_E2E_SERVER_LOG) console.log(server.log.join(''));
});

// ---- helpers ------------------------------------------------------------------

/** Open the demo app, wait for the camera preview, join `room` as `identity`. */
async function joinDemo(identity, room) {
  const page = await newPage(browser, server);
  await page.goto(`${server.url}/?room=${encodeURIComponent(room)}`);
  await page.waitForSelector('#local-media-container video');
  await page.fill('#identity-input', identity);
  await page.click('#join-button');
  await eventually(() => page.evaluate(() => Boolean(window.salonDemo.room)), `${identity} to join ${room}`);
  page.identity = identity;
  return page;
}

const events = (page) => page.evaluate(() => window.salonDemo.events);

/** Videos on the page's remote tiles: identity → videoWidth. */
const remoteVideos = (page) => page.evaluate(() => Object.fromEntries(
  [...document.querySelectorAll('#remote-media-container .tile')]
    .map((tile) => [tile.dataset.identity, tile.querySelector('video')?.videoWidth || 0]),
));

// ---- the demo app ---------------------------------------------------------------

describe('the demo app', () => {
  const room = 'e2e-call';
  let alice;
  let bob;
  let carol;

  test('two participants join and each decodes the other\'s video and receives their audio', async () => {
    alice = await joinDemo('alice', room);
    bob = await joinDemo('bob', room);
    await Promise.all([
      assertReceiving(alice, { videos: 1, audios: 1 }),
      assertReceiving(bob, { videos: 1, audios: 1 }),
    ]);
    for (const [page, other] of [[alice, 'bob'], [bob, 'alice']]) {
      const videos = await eventually(async () => {
        const v = await remoteVideos(page);
        return v[other] > 0 && v;
      }, `${page.identity}'s tile of ${other} to show video`);
      assert.deepEqual(Object.keys(videos), [other]);
      assert.equal(await page.textContent('#participant-count'), '2 people');
    }
    await alice.screenshot({ path: path.join(artifacts, 'two-person-call.png') });
  });

  test('a late joiner sees both, and both see the late joiner', async () => {
    carol = await joinDemo('carol', room);
    await assertReceiving(carol, { videos: 2, audios: 2 });
    const videos = await eventually(async () => {
      const v = await remoteVideos(carol);
      return v.alice > 0 && v.bob > 0 && v;
    }, 'carol to show alice and bob');
    assert.deepEqual(Object.keys(videos).sort(), ['alice', 'bob']);
    for (const page of [alice, bob]) {
      await eventually(async () => (await remoteVideos(page)).carol > 0, `${page.identity} to show carol`);
      assert.ok((await events(page)).includes('participantConnected carol'));
      await eventually(async () => (await page.textContent('#participant-count')) === '3 people', `${page.identity}'s count to be 3`);
    }
    await assertReceiving(alice, { videos: 2, audios: 2 });
  });

  test('a camera turned off is trackDisabled for the others, and trackEnabled when back on', async () => {
    await alice.click('#camera-button');
    assert.equal(await alice.getAttribute('#camera-button', 'aria-pressed'), 'false');
    for (const page of [bob, carol]) {
      await eventually(async () => (await events(page)).includes('trackDisabled alice video'), `${page.identity} to get trackDisabled`);
      await eventually(() => page.$eval('.tile[data-identity="alice"]', (t) => t.classList.contains('video-off')), 'alice\'s tile to show camera off');
    }
    await alice.click('#camera-button');
    for (const page of [bob, carol]) {
      await eventually(async () => (await events(page)).includes('trackEnabled alice video'), `${page.identity} to get trackEnabled`);
    }
  });

  test('one leaves: the others get participantDisconnected and its tile goes away', async () => {
    await carol.click('#leave-button');
    for (const page of [alice, bob]) {
      await eventually(async () => (await events(page)).includes('participantDisconnected carol'), `${page.identity} to get participantDisconnected`);
      await eventually(async () => !(await page.$('.tile[data-identity="carol"]')), `carol's tile to go at ${page.identity}`);
      assert.equal(await page.textContent('#participant-count'), '2 people');
    }
    // Carol's peer connection is closed; her preview (the demo's own tracks) stays on.
    await eventually(async () => (await leftovers(carol)).openPeerConnections === 0, 'carol\'s peer connection to close');
    assert.ok(await carol.$eval('body', (b) => b.classList.contains('lobby')));
    await carol.close();
  });

  test('completing the room through the REST API disconnects every page with 53118', async () => {
    const fetched = await server.rest('GET', `/v1/Rooms/${room}`);
    assert.equal(fetched.status, 200);
    const completed = await server.rest('POST', `/v1/Rooms/${fetched.body.sid}`, { Status: 'completed' });
    assert.equal(completed.status, 200);
    assert.equal(completed.body.status, 'completed');
    for (const page of [alice, bob]) {
      await eventually(async () => (await events(page)).includes('disconnected 53118'), `${page.identity} to be disconnected with 53118`);
      await page.waitForSelector('.banner >> text=The room has ended.');
      await eventually(async () => (await leftovers(page)).openPeerConnections === 0, `${page.identity}'s peer connection to close`);
    }
    await alice.close();
    await bob.close();
  });
});

describe('the demo app without camera permission', () => {
  test('says so, and still joins to see and hear the others', async () => {
    const page = await newPage(browser, server);
    page.identity = 'shy';
    await page.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = async () => {
        throw new DOMException('Permission denied', 'NotAllowedError');
      };
    });
    await page.goto(`${server.url}/?room=e2e-shy`);
    await page.waitForSelector('.banner >> text=No camera permission');
    assert.equal(await page.getAttribute('#camera-button', 'aria-pressed'), 'false');
    await page.fill('#identity-input', 'shy');
    await page.click('#join-button');
    await eventually(() => page.evaluate(() => Boolean(window.salonDemo.room)), 'shy to join without devices');
    const other = await joinDemo('bold', 'e2e-shy');
    await assertReceiving(page, { videos: 1, audios: 1 });
    await eventually(async () => (await remoteVideos(page)).bold > 0, 'shy to see bold');
    await eventually(() => other.$eval('.tile[data-identity="shy"]', (t) => t.classList.contains('video-off')), 'bold to see shy as an avatar');
    await other.close();
    await page.close();
  });
});

// ---- the tutorial, unchanged but for its import ---------------------------------------

describe('a page written against the twilio-video API', () => {
  test('runs the tutorial\'s flow with Salon\'s SDK', async () => {
    const pages = [];
    for (const identity of ['ada', 'grace']) {
      const page = await newPage(browser, server);
      page.identity = identity;
      await page.goto(`${server.url}/e2e/tutorial.html`);
      await page.fill('#identity-input', identity);
      await page.fill('#room-name-input', 'e2e-tutorial');
      await page.click('#join-button');
      const outcome = await eventually(() => page.evaluate(() => (window.tutorial.room ? 'connected' : window.tutorial.error)), `${identity} to connect`);
      assert.equal(outcome, 'connected');
      pages.push(page);
    }
    const [ada, grace] = pages;
    for (const [page, other] of [[ada, 'grace'], [grace, 'ada']]) {
      await eventually(() => page.evaluate((o) => {
        const video = document.querySelector(`#remote-media-container [data-identity="${o}"] video`);
        return video && video.videoWidth > 0;
      }, other), `${page.identity} to see ${other} through attach()`);
      await assertReceiving(page, { videos: 1, audios: 1 });
    }
    await grace.click('#leave-button');
    await eventually(async () => (await ada.evaluate(() => window.tutorial.events)).includes('participantDisconnected grace'), 'ada to see grace leave');
    await eventually(() => ada.evaluate(() => !document.querySelector('#remote-media-container .participant')), 'grace\'s div to go');
    // The tutorial let connect() capture the camera and microphone, so
    // disconnect() stopped them, and closed the peer connection.
    await eventually(async () => {
      const left = await leftovers(grace);
      return left.openPeerConnections === 0 && left.liveTracks === 0;
    }, 'grace\'s camera, microphone and peer connection to stop');
    assert.deepEqual(ada.errors, []);
    assert.deepEqual(grace.errors, []);
    for (const page of pages) await page.close();
  });
});

// ---- join time -----------------------------------------------------------------------------

describe('join time', () => {
  test('connect() to the first decoded remote frame, on localhost', async () => {
    const room = 'e2e-join-time';
    const publisher = await newPage(browser, server);
    await publisher.goto(`${server.url}/e2e/blank.html`);
    await publisher.evaluate(async ({ token, room }) => {
      const Video = await import('/sdk/salon-video.js');
      window.room = await Video.connect(token, { name: room, audio: true, video: { width: 320 } });
    }, { token: await server.token('publisher', room), room });

    const joiner = await newPage(browser, server);
    await joiner.goto(`${server.url}/e2e/blank.html`);
    const runs = [];
    for (let i = 0; i < 7; i++) {
      const token = await server.token('joiner', room);
      const run = await joiner.evaluate(async ({ token, room }) => {
        const Video = await import('/sdk/salon-video.js');
        // As in the demo app: the camera and microphone are on before Join.
        window.tracks ??= await Video.createLocalTracks({ audio: true, video: { width: 320 } });
        const t0 = performance.now();
        const room_ = await Video.connect(token, { name: room, tracks: window.tracks });
        const connected = performance.now() - t0;
        const video = await new Promise((resolve) => {
          const take = (track) => track.kind === 'video' && resolve(track);
          room_.on('trackSubscribed', take);
          room_.participants.forEach((p) => p.videoTracks.forEach((pub) => pub.track && take(pub.track)));
        });
        const subscribed = performance.now() - t0;
        const element = video.attach();
        document.body.appendChild(element);
        const rendered = new Promise((resolve) => element.requestVideoFrameCallback((now) => resolve(now - t0)));
        let decoded = null;
        while (decoded === null && performance.now() - t0 < 10_000) {
          const [report] = await room_.getStats();
          if (report.remoteVideoTrackStats.some((s) => s.framesDecoded > 0)) decoded = performance.now() - t0;
          else await new Promise((r) => setTimeout(r, 5));
        }
        const firstRendered = await Promise.race([rendered, new Promise((r) => setTimeout(() => r(null), 5_000))]);
        video.detach().forEach((el) => el.remove());
        room_.disconnect();
        return { connected, subscribed, decoded, rendered: firstRendered };
      }, { token, room });
      runs.push(run);
      await sleep(500);
    }
    const round = (x) => (x === null ? null : Math.round(x));
    const median = (xs) => {
      const s = xs.filter((x) => x !== null).sort((a, b) => a - b);
      return s.length ? s[Math.floor((s.length - 1) / 2)] : null;
    };
    for (const [i, r] of runs.entries()) {
      console.log(`# join ${i + 1}: connect() resolved ${round(r.connected)} ms, trackSubscribed ${round(r.subscribed)} ms, first frame decoded ${round(r.decoded)} ms, rendered ${round(r.rendered)} ms`);
    }
    const decodedMedian = median(runs.map((r) => r.decoded));
    console.log(`# join time (connect() → first decoded remote frame), median of ${runs.length}: ${round(decodedMedian)} ms (target < 500 ms); first rendered: ${round(median(runs.map((r) => r.rendered)))} ms`);
    assert.ok(runs.every((r) => r.decoded !== null), 'every join decodes a frame');
    await publisher.evaluate(() => window.room.disconnect());
    await publisher.close();
    await joiner.close();
  });
});

// ---- the SDK: bad input, errors, cleanup, data, reconnection ---------------------------------

describe('the SDK', () => {
  const sdkPage = (identity) => openSdkPage(browser, server, identity);

  test('rejects bad arguments with TypeError and RangeError', async () => {
    const page = await sdkPage('checker');
    const token = await server.token('checker', 'e2e-bad-input');
    const cases = [
      [() => window.Video.connect(42), 'TypeError', /token must be a string/],
      [(t) => window.Video.connect(t, 'standup'), 'TypeError', /options must be an object/],
      [(t) => window.Video.connect(t, { name: 7 }), 'TypeError', /options.name must be a string/],
      [(t) => window.Video.connect(t, { name: 'x', tracks: 'camera' }), 'TypeError', /options.tracks must be an Array/],
      [(t) => window.Video.connect(t, { name: 'x', tracks: [{}] }), 'TypeError', /options.tracks must be an Array/],
      [(t) => window.Video.connect(t, { name: 'x', video: 'hd' }), 'TypeError', /options.video must be a boolean/],
      [(t) => window.Video.connect(t, { name: 'x', preferredVideoCodecs: ['AV2'] }), 'RangeError', /must be one of VP8, H264, VP9/],
      [(t) => window.Video.connect(t, { name: 'x', maxVideoBitrate: -5 }), 'RangeError', /maxVideoBitrate/],
      [(t) => window.Video.connect(t, { name: 'x', automaticSubscription: 'yes' }), 'TypeError', /automaticSubscription must be a boolean/],
      [() => window.Video.createLocalTracks({ video: 3 }), 'TypeError', /options.video must be a boolean/],
      [() => new window.Video.LocalDataTrack({ maxRetransmits: -1 }), 'RangeError', /maxRetransmits/],
      [() => new window.Video.LocalDataTrack().send(42), 'TypeError', /data must be a string/],
      [() => new window.Video.LocalVideoTrack('camera'), 'TypeError', /mediaStreamTrack must be a MediaStreamTrack/],
    ];
    for (const [fn, ctor, message] of cases) {
      const result = await outcome(page, fn, token);
      assert.equal(result.ok, false, `${fn} should fail`);
      assert.equal(result.ctor, ctor, `${fn}: ${JSON.stringify(result)}`);
      assert.match(result.message, message, `${fn}`);
    }
    // Nothing was captured or opened for arguments refused up front.
    assert.deepEqual(await leftovers(page), { openPeerConnections: 0, liveTracks: 0 });
    await page.close();
  });

  test('a refused token is TwilioError 20101, and connect() leaves no camera or peer connection behind', async () => {
    const page = await sdkPage('intruder');
    const result = await outcome(page, () => window.Video.connect('not-a-token', { name: 'e2e-refused' }));
    assert.equal(result.ok, false);
    assert.equal(result.code, 20101, JSON.stringify(result));
    assert.equal(result.name, 'TwilioError');
    const left = await leftovers(page);
    assert.equal(left.openPeerConnections, 0);
    assert.equal(left.liveTracks, 0, 'the camera and microphone connect() captured are stopped');
    await page.close();
  });

  test('a full room is 53105 (and the demo says so); a duplicate identity is 53205 for the older one', async () => {
    const room = 'e2e-full';
    const created = await server.rest('POST', '/v1/Rooms', { UniqueName: room, Type: 'go' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const first = await sdkPage('first');
    const second = await sdkPage('second');
    const join = (page, identity) => server.token(identity, room).then((token) => outcome(page, async ({ token, room }) => {
      window.room = await window.Video.connect(token, { name: room, tracks: [] });
      window.room.on('disconnected', (_r, e) => { window.goodbye = e ? e.code : 'none'; });
      return window.room.sid;
    }, { token, room }));
    assert.equal((await join(first, 'first')).ok, true);
    assert.equal((await join(second, 'second')).ok, true);

    const third = await sdkPage('third');
    const refused = await outcome(third, ({ token, room }) => window.Video.connect(token, { name: room }), { token: await server.token('third', room), room });
    assert.equal(refused.code, 53105, JSON.stringify(refused));
    assert.deepEqual(await leftovers(third), { openPeerConnections: 0, liveTracks: 0 });
    await third.close();

    const demo = await newPage(browser, server);
    await demo.goto(`${server.url}/?room=${room}`);
    await demo.waitForSelector('#local-media-container video');
    await demo.fill('#identity-input', 'fourth');
    await demo.click('#join-button');
    await demo.waitForSelector('.banner >> text=This room is full.');
    await demo.close();

    // "second" joins again from elsewhere: the older connection goes with 53205.
    const again = await sdkPage('second-again');
    assert.equal((await join(again, 'second')).ok, true);
    await eventually(() => second.evaluate(() => window.goodbye === 53205), 'the older "second" to be disconnected with 53205');
    assert.deepEqual(await leftovers(second), { openPeerConnections: 0, liveTracks: 0 });
    for (const page of [first, second, again]) await page.close();
  });

  test('publishing: a duplicate track name is 53304; a data track carries messages; unpublish is trackUnpublished', async () => {
    const room = 'e2e-publish';
    const sender = await sdkPage('sender');
    const receiver = await sdkPage('receiver');
    await receiver.evaluate(async ({ token, room }) => {
      window.room = await window.Video.connect(token, { name: room, tracks: [] });
      window.seen = [];
      window.room.on('trackMessage', (data, track, participant) => window.seen.push(`${participant.identity}/${track.name}: ${data}`));
      window.room.on('trackUnpublished', (publication, participant) => window.seen.push(`unpublished ${participant.identity}/${publication.trackName}`));
      window.room.on('trackSubscribed', (track) => window.seen.push(`subscribed ${track.kind} ${track.name}`));
    }, { token: await server.token('receiver', room), room });
    const duplicate = await outcome(sender, async ({ token, room }) => {
      const data = new window.Video.LocalDataTrack({ name: 'chat' });
      window.data = data;
      window.room = await window.Video.connect(token, { name: room, tracks: [data] });
      const canvas = document.createElement('canvas');
      canvas.width = 160;
      canvas.height = 120;
      const ctx = canvas.getContext('2d');
      window.paint = setInterval(() => { ctx.fillStyle = `hsl(${Date.now() % 360} 80% 50%)`; ctx.fillRect(0, 0, 160, 120); }, 66);
      window.screen = new window.Video.LocalVideoTrack(canvas.captureStream(15).getVideoTracks()[0], { name: 'screen' });
      await window.room.localParticipant.publishTrack(window.screen);
      const copy = new window.Video.LocalDataTrack({ name: 'chat' });
      await window.room.localParticipant.publishTrack(copy);
    }, { token: await server.token('sender', room), room });
    assert.equal(duplicate.code, 53304, JSON.stringify(duplicate));
    await eventually(() => receiver.evaluate(() => window.seen.includes('subscribed data chat') && window.seen.includes('subscribed video screen')), 'the receiver to subscribe to chat and screen');
    await assertReceiving(Object.assign(receiver, { identity: 'receiver' }), { videos: 1, audios: 0 });
    await eventually(async () => {
      await sender.evaluate(() => window.data.send('hello'));
      return receiver.evaluate(() => window.seen.includes('sender/chat: hello'));
    }, 'a data message to arrive');
    await sender.evaluate(() => { window.room.localParticipant.unpublishTrack(window.screen); window.screen.stop(); });
    await eventually(() => receiver.evaluate(() => window.seen.includes('unpublished sender/screen')), 'trackUnpublished');
    await sender.evaluate(() => { clearInterval(window.paint); window.room.disconnect(); });
    await receiver.evaluate(() => window.room.disconnect());
    await sender.close();
    await receiver.close();
  });

  test('a dropped signaling socket is resumed (reconnecting, reconnected) with media flowing on', async () => {
    const room = 'e2e-reconnect';
    const proxy = await tcpProxy(server.port);
    after(() => proxy.close());
    const steady = await sdkPage('steady');
    const shaky = await sdkPage('shaky');
    const connect = (page, url) => server.token(page.identity, room).then((token) => page.evaluate(async ({ token, room, url }) => {
      window.room = await window.Video.connect(token, { name: room, audio: true, video: { width: 320 }, url });
      window.seen = [];
      for (const event of ['reconnecting', 'reconnected', 'participantDisconnected']) {
        window.room.on(event, (x) => window.seen.push(event === 'reconnecting' ? `${event} ${x.code}` : event));
      }
      window.room.on('disconnected', (_r, e) => window.seen.push(`disconnected ${e ? e.code : ''}`));
    }, { token, room, url }));
    await connect(steady, undefined);
    await connect(shaky, proxy.url);
    await assertReceiving(shaky, { videos: 1, audios: 1 });

    proxy.cut();
    await eventually(() => shaky.evaluate(() => window.seen.includes('reconnecting 53001')), 'reconnecting');
    await eventually(() => shaky.evaluate(() => window.seen.includes('reconnected') && window.room.state === 'connected'), 'reconnected');
    await assertReceiving(shaky, { videos: 1, audios: 1 });
    await assertReceiving(steady, { videos: 1, audios: 1 });
    assert.deepEqual(await steady.evaluate(() => window.seen), [], 'the other participant noticed nothing');

    // No way back within the server's session timeout (10 s here): the
    // room gives up with 53000, twilio-video's code for reconnection
    // attempts exhausted.
    await proxy.close();
    await eventually(() => shaky.evaluate(() => window.seen.includes('disconnected 53000')), 'disconnected with 53000', 20_000);
    assert.equal((await leftovers(shaky)).openPeerConnections, 0);
    assert.equal((await leftovers(shaky)).liveTracks, 0, 'the tracks connect() captured are stopped');
    await eventually(() => steady.evaluate(() => window.seen.includes('participantDisconnected')), 'steady to see shaky go', 20_000);
    await steady.evaluate(() => window.room.disconnect());
    await steady.close();
    await shaky.close();
  });

  test('a resume that reaches the server after its session ended (removed while away) ends the room with 53204', async () => {
    const room = 'e2e-resume-ended';
    const proxy = await tcpProxy(server.port);
    after(() => proxy.close());
    const away = await sdkPage('away');
    const token = await server.token(away.identity, room);
    const sids = await away.evaluate(async ({ token, room, url }) => {
      window.room = await window.Video.connect(token, { name: room, audio: false, video: false, url });
      window.seen = [];
      window.room.on('reconnecting', (e) => window.seen.push(`reconnecting ${e.code}`));
      window.room.on('disconnected', (_r, e) => window.seen.push(`disconnected ${e ? `${e.code} ${e.constructor.name}` : ''}`));
      return { room: window.room.sid, participant: window.room.localParticipant.sid };
    }, { token, room, url: proxy.url });
    // The socket drops and no new one gets through; meanwhile the
    // participant is removed through the REST API, which ends its session.
    proxy.hold();
    await eventually(() => away.evaluate(() => window.seen.includes('reconnecting 53001')), 'reconnecting');
    const removed = await server.rest('POST', `/v1/Rooms/${sids.room}/Participants/${sids.participant}`, { Status: 'disconnected' });
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    proxy.release();
    await eventually(() => away.evaluate(() => window.seen.some((e) => e.startsWith('disconnected'))), 'disconnected', 15_000);
    assert.deepEqual(await away.evaluate(() => window.seen), ['reconnecting 53001', 'disconnected 53204 ParticipantNotFoundError']);
    await away.close();
  });
});
