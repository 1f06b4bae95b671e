// The official twilio-video SDK (2.36.0 from npm, pinned in
// package-lock.json), unmodified, against Salon's /signaling in real
// Chromium: only its connect options point it at Salon.
//
//   node --test --test-concurrency=1 tests/e2e/official-sdk.test.mjs
//
// Needs target/debug/salon (or $SALON_BIN), /usr/bin/chromium (or
// $CHROMIUM) and tests/e2e/setup's npm packages; see DEVELOPERS.md.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  assertReceiving, eventually, here, inbound, launchBrowser, newPage, sdkPage, startServer, tcpProxy,
} from './harness.mjs';

const SDK = path.join(here, 'node_modules', 'twilio-video', 'dist', 'twilio-video.min.js');

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (process.env.SALON_E2E_SERVER_LOG) console.log(server.log.join(''));
});

/** A page with the official SDK's script-tag bundle (window.Twilio.Video). */
async function officialPage(identity, token) {
  const page = await newPage(browser, server);
  await page.goto(`${server.url}/e2e/blank.html`);
  await page.addScriptTag({ path: SDK });
  page.identity = identity;
  page.token = token ?? (await server.token(identity));
  return page;
}

/**
 * connect() in the page with camera and microphone (and a data track when
 * `data`); `iceServers` given → the hello carries `connect` directly,
 * otherwise the SDK asks for ICE servers first. Resolves with what the
 * room looked like, or rejects with the SDK's error code.
 */
function connect(page, room, { iceServers, data = false, via = server.url } = {}) {
  const wsServer = `${via.replace('http', 'ws')}/signaling`;
  return page.evaluate(async ({ token, room, wsServer, iceServers, data }) => {
    const Video = window.Twilio.Video;
    const tracks = await Video.createLocalTracks({ audio: true, video: { width: 320, height: 240 } });
    if (data) {
      window.dataTrack = new Video.LocalDataTrack();
      tracks.push(window.dataTrack);
    }
    const events = [];
    window.events = events;
    const options = { name: room, tracks, wsServer, insights: false };
    if (iceServers) options.iceServers = iceServers;
    let r;
    try {
      r = await Video.connect(token, options);
    } catch (e) {
      return { error: e.code ?? String(e) };
    }
    window.room = r;
    const watch = (p) => {
      p.on('trackSubscribed', (track) => {
        events.push(['trackSubscribed', p.identity, track.kind]);
        if (track.kind === 'data') {
          track.on('message', (m) => events.push(['message', p.identity, m]));
        } else {
          document.body.appendChild(track.attach());
        }
      });
      p.on('trackDisabled', (pub) => events.push(['trackDisabled', p.identity, pub.kind]));
      p.on('trackEnabled', (pub) => events.push(['trackEnabled', p.identity, pub.kind]));
      p.on('trackUnpublished', (pub) => events.push(['trackUnpublished', p.identity, pub.kind]));
    };
    r.participants.forEach(watch);
    r.on('participantConnected', (p) => {
      events.push(['participantConnected', p.identity]);
      watch(p);
    });
    r.on('participantDisconnected', (p) => events.push(['participantDisconnected', p.identity]));
    r.on('participantReconnecting', (p) => events.push(['participantReconnecting', p.identity]));
    r.on('participantReconnected', (p) => events.push(['participantReconnected', p.identity]));
    r.on('disconnected', (_, e) => events.push(['disconnected', e ? e.code : null]));
    r.on('reconnecting', (e) => events.push(['reconnecting', e ? e.code : null]));
    r.on('reconnected', () => events.push(['reconnected']));
    return {
      sid: r.sid,
      name: r.name,
      me: r.localParticipant.sid,
      identity: r.localParticipant.identity,
      participants: [...r.participants.values()].map((p) => p.identity),
      published: [...r.localParticipant.tracks.values()].map((p) => p.trackSid),
    };
  }, { token: page.token, room, wsServer, iceServers, data });
}

const events = (page) => page.evaluate(() => window.events);
const has = async (page, ...event) => (await events(page)).some((e) => JSON.stringify(e) === JSON.stringify(event));

/** Video frames decoded on the page, summed. */
async function framesDecoded(page) {
  return (await inbound(page)).filter((s) => s.kind === 'video').reduce((n, s) => n + s.framesDecoded, 0);
}

describe('the official twilio-video SDK', () => {
  let alice;
  let bob;
  let aliceRoom;

  test('connects in both hello forms; the joiner finds who is there', async () => {
    alice = await officialPage('alice');
    aliceRoom = await connect(alice, 'official');
    assert.ok(!aliceRoom.error, `alice connect: ${JSON.stringify(aliceRoom)}`);
    assert.match(aliceRoom.sid, /^RM/);
    assert.equal(aliceRoom.name, 'official');
    assert.match(aliceRoom.me, /^PA/);
    assert.equal(aliceRoom.identity, 'alice');
    await eventually(async () => (await alice.evaluate(() => [...window.room.localParticipant.tracks.values()].filter((p) => p.trackSid).length)) === 2,
      "alice's two tracks published with SIDs");

    bob = await officialPage('bob');
    const bobRoom = await connect(bob, 'official', { iceServers: [], data: true });
    assert.ok(!bobRoom.error, `bob connect: ${JSON.stringify(bobRoom)}`);
    assert.equal(bobRoom.sid, aliceRoom.sid);
    assert.deepEqual(bobRoom.participants, ['alice'], 'alice is there when connect() resolves');
    await eventually(() => has(alice, 'participantConnected', 'bob'), 'alice to see bob');
  });

  test('audio and video arrive both ways, with frames', async () => {
    for (const [page, other] of [[alice, 'bob'], [bob, 'alice']]) {
      await eventually(() => has(page, 'trackSubscribed', other, 'audio'), `${page.identity} subscribed to ${other}'s audio`, 20_000);
      await eventually(() => has(page, 'trackSubscribed', other, 'video'), `${page.identity} subscribed to ${other}'s video`, 20_000);
      await eventually(async () => (await framesDecoded(page)) > 10, `${page.identity} decoding ${other}'s video`, 20_000);
    }
  });

  test("a data track's messages reach the other side", async () => {
    await eventually(() => has(alice, 'trackSubscribed', 'bob', 'data'), "alice subscribed to bob's data track", 20_000);
    await eventually(async () => {
      await bob.evaluate(() => window.dataTrack.send('hello from bob'));
      return has(alice, 'message', 'bob', 'hello from bob');
    }, 'the message to arrive', 20_000);
  });

  test('mute and unmute show on the other side', async () => {
    await bob.evaluate(() => window.room.localParticipant.videoTracks.forEach((p) => p.track.disable()));
    await eventually(() => has(alice, 'trackDisabled', 'bob', 'video'), 'alice to see bob muted');
    await bob.evaluate(() => window.room.localParticipant.videoTracks.forEach((p) => p.track.enable()));
    await eventually(() => has(alice, 'trackEnabled', 'bob', 'video'), 'alice to see bob unmuted');
  });

  test('unpublish and publish again: the other side follows', async () => {
    await bob.evaluate(() => {
      const [publication] = [...window.room.localParticipant.videoTracks.values()];
      window.room.localParticipant.unpublishTrack(publication.track);
      publication.track.stop();
    });
    await eventually(() => has(alice, 'trackUnpublished', 'bob', 'video'), 'alice to see bob unpublish');
    await bob.evaluate(async () => {
      const track = await window.Twilio.Video.createLocalVideoTrack({ width: 320, height: 240 });
      await window.room.localParticipant.publishTrack(track);
    });
    const subscribed = async () => (await events(alice)).filter((e) => JSON.stringify(e) === '["trackSubscribed","bob","video"]').length;
    await eventually(async () => (await subscribed()) === 2, "alice subscribed to bob's new video", 20_000);
    const before = await framesDecoded(alice);
    await eventually(async () => (await framesDecoded(alice)) > before + 10, "alice decoding bob's new video", 20_000);
  });

  test('a Salon SDK participant shares the room both ways', async () => {
    const carol = await sdkPage(browser, server, 'carol');
    const token = await server.token('carol');
    await carol.evaluate(async ({ token }) => {
      window.room = await window.Video.connect(token, { name: 'official', audio: true, video: { width: 320, height: 240 } });
    }, { token });
    // Carol receives Alice's and Bob's audio and video; Alice, Carol's.
    await assertReceiving(carol, { videos: 2, audios: 2 });
    await eventually(() => has(alice, 'trackSubscribed', 'carol', 'video'), "alice subscribed to carol's video", 20_000);
    await eventually(() => has(alice, 'trackSubscribed', 'carol', 'audio'), "alice subscribed to carol's audio", 20_000);
    await carol.evaluate(() => window.room.disconnect());
    await eventually(() => has(alice, 'participantDisconnected', 'carol'), 'alice to see carol leave');
    await carol.close();
  });

  test('a duplicate identity ends the older session with 53205', async () => {
    const again = await officialPage('bob');
    const joined = await connect(again, 'official', { iceServers: [] });
    assert.ok(!joined.error, JSON.stringify(joined));
    await eventually(() => has(bob, 'disconnected', 53205), 'the first bob to be disconnected with 53205');
    await again.evaluate(() => window.room.disconnect());
    await again.close();
    await bob.close();
    await eventually(() => has(alice, 'participantDisconnected', 'bob'), 'alice to see bob leave');
  });

  test('a bad token is refused with 20101', async () => {
    const page = await officialPage('mallory', 'not-a-token');
    for (const iceServers of [undefined, []]) {
      const result = await connect(page, 'official', { iceServers });
      assert.equal(result.error, 20101, JSON.stringify(result));
    }
    await page.close();
  });

  test('a REST kick disconnects without an error', async () => {
    const dave = await officialPage('dave');
    const joined = await connect(dave, 'official', { iceServers: [] });
    assert.ok(!joined.error, JSON.stringify(joined));
    const r = await server.rest('POST', `/v1/Rooms/${aliceRoom.sid}/Participants/dave`, { Status: 'disconnected' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await eventually(() => has(dave, 'disconnected', null), 'dave to be disconnected');
    await eventually(() => has(alice, 'participantDisconnected', 'dave'), 'alice to see dave go');
    await dave.close();
  });

  test('a dropped signaling socket is resumed with sync', async () => {
    const proxy = await tcpProxy(server.port);
    const erin = await officialPage('erin');
    const joined = await connect(erin, 'official', { iceServers: [], via: proxy.url });
    assert.ok(!joined.error, JSON.stringify(joined));
    await eventually(() => has(alice, 'participantConnected', 'erin'), 'alice to see erin');
    proxy.cut();
    await eventually(() => has(erin, 'reconnecting', 53001), 'erin reconnecting (53001)', 20_000);
    await eventually(() => has(erin, 'reconnected'), 'erin reconnected', 20_000);
    await eventually(() => has(alice, 'participantReconnecting', 'erin'), 'alice to see erin reconnecting');
    await eventually(() => has(alice, 'participantReconnected', 'erin'), 'alice to see erin reconnected');
    assert.ok(!(await has(alice, 'participantDisconnected', 'erin')), 'erin never left the room');
    assert.ok(!(await has(erin, 'disconnected', null)), 'erin is still connected');
    // Still signaling: erin's mute reaches alice.
    await erin.evaluate(() => window.room.localParticipant.audioTracks.forEach((p) => p.track.disable()));
    await eventually(() => has(alice, 'trackDisabled', 'erin', 'audio'), 'alice to see erin muted after the resume');
    await erin.evaluate(() => window.room.disconnect());
    await erin.close();
    await proxy.close();
  });

  test('a room completed over REST disconnects with 53118', async () => {
    const r = await server.rest('POST', `/v1/Rooms/${aliceRoom.sid}`, { Status: 'completed' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await eventually(() => has(alice, 'disconnected', 53118), 'alice to be disconnected with 53118');
    assert.deepEqual(alice.errors.filter((e) => !/insights|favicon/i.test(e)), [], 'no page errors');
    await alice.close();
  });
});
