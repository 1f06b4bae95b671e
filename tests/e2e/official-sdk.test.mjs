// The official twilio-video SDK (2.36.0 from npm, pinned in
// package-lock.json), unmodified, against Salon's /signaling in real
// Chromium: only its connect options point it at Salon. Adaptive simulcast
// ('auto'): MSP publisher_hints disable the layers nobody wants.
//
//   node --test --test-concurrency=1 tests/e2e/official-sdk.test.mjs
//
// Needs target/debug/salon (or $SALON_BIN), /usr/bin/chromium (or
// $CHROMIUM) and tests/e2e/setup's npm packages; see DEVELOPERS.md.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import {
  assertReceiving, eventually, inbound, launchBrowser, officialSdkPage, repo, sdkPage, startServer, tcpProxy,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  // A steady tone on every microphone: the dominant speaker is whoever
  // has audio enabled.
  browser = await launchBrowser({ tone: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (process.env.SALON_E2E_SERVER_LOG) console.log(server.log.join(''));
});

/** A page with the official SDK's script-tag bundle (window.Twilio.Video). */
const officialPage = (identity, token) => officialSdkPage(browser, server, identity, token);

/**
 * connect() in the page with camera and microphone (and a data track when
 * `data`); `iceServers` given → the hello carries `connect` directly,
 * otherwise the SDK asks for ICE servers first. Resolves with what the
 * room looked like, or rejects with the SDK's error code. `extra`: more
 * connect options (dominantSpeaker, networkQuality, bandwidthProfile…).
 */
function connect(page, room, { iceServers, data = false, via = server.url, extra = {} } = {}) {
  const wsServer = `${via.replace('http', 'ws')}/signaling`;
  return page.evaluate(async ({ token, room, wsServer, iceServers, data, extra }) => {
    const Video = window.Twilio.Video;
    const tracks = await Video.createLocalTracks({ audio: true, video: { width: 320, height: 240 } });
    if (data) {
      window.dataTrack = new Video.LocalDataTrack();
      tracks.push(window.dataTrack);
    }
    const events = [];
    window.events = events;
    const options = { name: room, tracks, wsServer, insights: false, ...extra };
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
          track.on('message', (m) => events.push(['message', p.identity, typeof m === 'string' ? m : new TextDecoder().decode(m)]));
        } else {
          document.body.appendChild(track.attach());
        }
        if (track.kind === 'video') {
          track.on('switchedOff', () => events.push(['switchedOff', p.identity]));
          track.on('switchedOn', () => events.push(['switchedOn', p.identity]));
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
    r.on('dominantSpeakerChanged', (p) => events.push(['dominantSpeaker', p ? p.identity : null]));
    return {
      sid: r.sid,
      name: r.name,
      me: r.localParticipant.sid,
      identity: r.localParticipant.identity,
      participants: [...r.participants.values()].map((p) => p.identity),
      published: [...r.localParticipant.tracks.values()].map((p) => p.trackSid),
    };
  }, { token: page.token, room, wsServer, iceServers, data, extra });
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
    // The m-lines of alice's peer connection (the server's offers).
    const mlines = () => alice.evaluate(() => window.__e2e.pcs.find((p) => p.connectionState === 'connected')
      .remoteDescription.sdp.split('\nm=').length - 1);
    const linesBefore = await mlines();
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
    // Bob's new video reached alice on the m-line his old one left.
    assert.equal(await mlines(), linesBefore, 'no m-line added for the republished video');
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

describe('media signaling, m-lines and mixed rooms with the official SDK', () => {
  // Ann talks (her tone is on); Ben's microphone is disabled. Both ask for
  // every MSP channel the SDK has: dominant speaker, network quality with
  // details, and a bandwidth profile whose switch-off the app controls.
  const extra = {
    dominantSpeaker: true,
    networkQuality: { local: 3, remote: 2 },
    bandwidthProfile: { video: { mode: 'grid', clientTrackSwitchOffControl: 'manual' } },
  };
  let ann;
  let ben;
  let annRoom;

  /** The MSP messages the server sent `page` on its channel `label`. */
  const mspMessages = (page, label) => page.evaluate((label) => window.__e2e.channels
    .filter((c) => c.label === label).flatMap((c) => c.messages).map((m) => JSON.parse(m)), label);

  test('dominant speaker and network quality reach the official SDK', async () => {
    ann = await officialPage('ann');
    annRoom = await connect(ann, 'msp', { iceServers: [], extra });
    assert.ok(!annRoom.error, JSON.stringify(annRoom));
    ben = await officialPage('ben');
    await ben.evaluate(() => {
      // Ben's microphone is off from the start.
      window.Twilio.Video.createLocalTracks = ((create) => async (o) => {
        const tracks = await create(o);
        tracks.filter((t) => t.kind === 'audio').forEach((t) => t.disable());
        return tracks;
      })(window.Twilio.Video.createLocalTracks);
    });
    const joined = await connect(ben, 'msp', { iceServers: [], extra });
    assert.ok(!joined.error, JSON.stringify(joined));

    // The server opened the channels asked for, and not publisher_hints
    // (the SDK asks for it only with preferredVideoCodecs: 'auto').
    const labels = await eventually(async () => {
      const l = await ben.evaluate(() => window.__e2e.channels.map((c) => c.label));
      return ['active_speaker', 'network_quality', 'track_priority', 'track_switch_off', 'render_hints'].every((x) => l.includes(x)) && l;
    }, 'the MSP channels', 20_000);
    assert.ok(!labels.includes('publisher_hints'), JSON.stringify(labels));

    await eventually(() => ben.evaluate(() => window.room.dominantSpeaker?.identity === 'ann'), 'ben to see ann as the dominant speaker', 20_000);
    assert.ok(!(await events(ben)).some((e) => e[0] === 'dominantSpeaker' && e[1] === 'ben'), 'ben is never the dominant speaker');
    for (const [page, other] of [[ann, 'ben'], [ben, 'ann']]) {
      const levels = await eventually(() => page.evaluate((other) => {
        const me = window.room.localParticipant;
        const them = [...window.room.participants.values()].find((p) => p.identity === other);
        const stats = me.networkQualityStats;
        return typeof me.networkQualityLevel === 'number' && stats?.audio && them?.networkQualityStats?.audio
          && { local: me.networkQualityLevel, remote: them.networkQualityLevel, audio: stats.audio, theirs: them.networkQualityStats.audio };
      }, other), `${page.identity}'s own and ${other}'s network quality`, 20_000);
      for (const level of [levels.local, levels.remote, levels.audio.send, levels.audio.recv, levels.theirs.send]) {
        assert.ok(level >= 0 && level <= 5, JSON.stringify(levels));
      }
      // Verbosity 3: the measurements behind the levels (the SDK shows the
      // ones that came with the last change of level).
      await eventually(async () => (await mspMessages(page, 'network_quality')).some((m) => m.local?.audio?.sendStats?.latency),
        `${page.identity}'s network quality measurements`, 20_000);
    }
  });

  test('getStats() reports the remote tracks by their MT sids', async () => {
    await eventually(async () => (await framesDecoded(ben)) > 5, "ben decoding ann's video", 20_000);
    const { published, reported } = await ben.evaluate(async () => {
      const [report] = await window.room.getStats();
      const them = [...window.room.participants.values()][0];
      return {
        published: [...them.tracks.values()].map((p) => p.trackSid).sort(),
        reported: [...report.remoteVideoTrackStats, ...report.remoteAudioTrackStats].map((s) => s.trackSid).sort(),
      };
    });
    assert.equal(published.length, 2);
    assert.deepEqual(reported, published);
    assert.ok(reported.every((sid) => /^MT[0-9a-f]{32}$/.test(sid)), JSON.stringify(reported));
  });

  test('a subscriber switches a track off and on (bandwidth profile, manual switch-off)', async () => {
    const video = () => ben.evaluate(() => [...[...window.room.participants.values()][0].videoTracks.values()][0].track);
    assert.ok(await video(), "ben has ann's video");
    await ben.evaluate(() => {
      const [pub] = [...[...window.room.participants.values()][0].videoTracks.values()];
      pub.track.setPriority('high');
      pub.track.switchOff();
    });
    await eventually(() => has(ben, 'switchedOff', 'ann'), "ann's video switched off for ben");
    assert.ok(await ben.evaluate(() => [...[...window.room.participants.values()][0].videoTracks.values()][0].track.isSwitchedOff));
    // The render hints were acknowledged (the SDK would otherwise send them
    // again and again).
    const acks = await eventually(async () => (await mspMessages(ben, 'render_hints')).filter((m) => m.subscriber?.hints?.every((h) => h.result === 'OK')),
      'render hints acknowledged');
    assert.ok(acks.length >= 1);
    const frozen = await framesDecoded(ben);
    await new Promise((r) => setTimeout(r, 1_500));
    assert.ok((await framesDecoded(ben)) <= frozen + 2, 'no frames while switched off');
    await ben.evaluate(() => [...[...window.room.participants.values()][0].videoTracks.values()][0].track.switchOn());
    await eventually(() => has(ben, 'switchedOn', 'ann'), "ann's video switched on again");
    await eventually(async () => (await framesDecoded(ben)) > frozen + 10, 'frames again', 20_000);
  });

  test('data channels the server did not announce are ignored; bad MSP messages change nothing', async () => {
    // Ben opens channels of his own: one nobody announced, and one posing
    // as the render-hints channel, asking to switch ann's video off.
    const annVideo = await ben.evaluate(() => [...[...window.room.participants.values()][0].videoTracks.values()][0].trackSid);
    await ben.evaluate((annVideo) => new Promise((resolve) => {
      const pc = window.__e2e.pcs.find((p) => p.connectionState === 'connected');
      let open = 0;
      for (const label of ['bogus', 'render_hints']) {
        const dc = pc.createDataChannel(label);
        dc.onopen = () => {
          dc.send('not json');
          dc.send(new Uint8Array([1, 2, 3]));
          dc.send(JSON.stringify({ type: 'render_hints', subscriber: { id: 99, hints: [{ track: annVideo, enabled: false }] } }));
          if (++open === 2) setTimeout(resolve, 1_000);
        };
      }
    }), annVideo);
    // On the real channels: garbage, a message of the wrong shape, and a
    // hint for a track ben does not receive, which is answered but not OK.
    const bogusTrack = `MT${'0'.repeat(32)}`;
    await ben.evaluate((bogusTrack) => {
      const channel = (label) => window.__e2e.channels.find((c) => c.label === label).channel;
      channel('network_quality').send('{"type":"network_quality","recv":{"fractionLost":"lots"}}');
      channel('active_speaker').send('\u0000');
      const hints = channel('render_hints');
      hints.send('{"type":"render_hints","subscriber":{"id":-1,"hints":[]}}');
      hints.send(JSON.stringify({ type: 'render_hints', subscriber: { id: 77, hints: [{ track: bogusTrack, enabled: false }] } }));
    }, bogusTrack);
    const refused = await eventually(async () => (await mspMessages(ben, 'render_hints')).find((m) => m.subscriber?.id === 77), 'the answer to the bogus hint');
    assert.equal(refused.subscriber.hints[0].track, bogusTrack);
    assert.notEqual(refused.subscriber.hints[0].result, 'OK', JSON.stringify(refused));
    const before = await framesDecoded(ben);
    await eventually(async () => (await framesDecoded(ben)) > before + 10, "ann's video still flowing to ben", 20_000);
    assert.ok(!(await ben.evaluate(() => [...[...window.room.participants.values()][0].videoTracks.values()][0].track.isSwitchedOff)));
    assert.ok(!(await mspMessages(ben, 'render_hints')).some((m) => m.subscriber?.id === 99), 'no ack for the impostor');
    for (const page of [ann, ben]) {
      assert.ok(!(await events(page)).some((e) => e[0] === 'disconnected'), `${page.identity} still connected`);
    }
  });

  test('publishing a second video while receiving one recycles an m-line; both flow', async () => {
    const annFrames = async () => (await inbound(ann)).filter((s) => s.kind === 'video' && s.framesDecoded > 0).length;
    assert.equal(await annFrames(), 1);
    // Ben's transceivers: their m-lines, and whether each sends.
    const transceivers = () => ben.evaluate(() => window.__e2e.pcs.find((p) => p.connectionState === 'connected')
      .getTransceivers().map((t) => ({ mid: t.mid, sending: !!t.sender.track, direction: t.currentDirection })));
    const before = await transceivers();
    await ben.evaluate(async () => {
      const track = await window.Twilio.Video.createLocalVideoTrack({ width: 320, height: 240, name: 'second' });
      window.second = track;
      await window.room.localParticipant.publishTrack(track);
    });
    await eventually(async () => (await annFrames()) === 2, "ann decoding ben's two videos", 20_000);
    const frames = await framesDecoded(ben);
    await eventually(async () => (await framesDecoded(ben)) > frames + 10, "ben still decoding ann's video", 20_000);
    // The new track went out on an m-line that was receiving ann's video
    // (the SDK recycles a receive-only transceiver), which now goes both ways.
    const after = await transceivers();
    const recycled = after.filter((t) => t.sending && before.some((b) => b.mid === t.mid && !b.sending));
    assert.equal(recycled.length, 1, JSON.stringify({ before, after }));
    assert.equal(recycled[0].direction, 'sendrecv', JSON.stringify({ before, after }));
    await ben.evaluate(() => {
      window.room.localParticipant.unpublishTrack(window.second);
      window.second.stop();
    });
    await eventually(async () => (await events(ann)).filter((e) => e[0] === 'trackUnpublished').length === 1, "ann to see the second video go");
  });

  test('a mixed room: official SDK, Salon SDK and a Rust client receive each other', async () => {
    await ben.close();
    const sally = await sdkPage(browser, server, 'sally');
    const token = await server.token('sally');
    await sally.evaluate(async ({ token }) => {
      window.room = await window.Video.connect(token, { name: 'msp', audio: true, video: { width: 320, height: 240 } });
    }, { token });
    // The Rust client (crates/client's `room` example, built by cargo
    // test) joins over Salon's protocol for 12 s with audio, video and a
    // data track, and says hello on it every second.
    const target = process.env.CARGO_TARGET_DIR || path.join(repo, 'target');
    const example = path.join(target, 'debug', 'examples', 'room');
    const rustToken = await server.token('rusty');
    const rust = spawn(example, [`${server.url.replace('http', 'ws')}/v1/signaling`, 'msp', '12', rustToken], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    rust.stdout.on('data', (d) => { out += d; });
    rust.stderr.on('data', (d) => { out += d; });
    const exited = new Promise((resolve) => rust.once('exit', resolve));
    try {
      await eventually(() => has(ann, 'participantConnected', 'rusty'), `ann to see rusty join (rusty: ${out})`, 20_000);
      await eventually(() => has(ann, 'message', 'rusty', 'hello from rusty'), "ann to get rusty's data", 20_000).catch(async (e) => {
        throw new Error(`${e.message}: ${JSON.stringify(await events(ann))}\n${out}`);
      });
      await eventually(() => has(ann, 'trackSubscribed', 'rusty', 'video'), "ann subscribed to rusty's video");
      await eventually(() => has(ann, 'trackSubscribed', 'sally', 'video'), "ann subscribed to sally's video");
      // Ann decodes sally's video and receives rusty's (synthetic, not
      // decodable) packets; sally decodes ann's and hears ann and rusty.
      await eventually(async () => (await inbound(ann)).filter((s) => s.kind === 'video' && s.packetsReceived > 0).length >= 2, 'ann receiving two videos', 20_000);
      await eventually(async () => (await inbound(ann)).filter((s) => s.kind === 'video' && s.framesDecoded > 0).length >= 1, "ann decoding sally's video", 20_000);
      await assertReceiving(sally, { videos: 1, audios: 2 });
      assert.equal(await exited, 0, out);
    } finally {
      rust.kill();
    }
    // What the Rust client received, by kind: "rusty got MT… (Video): N packets".
    const got = [...out.matchAll(/rusty got MT\w+ \((\w+)\): (\d+) packets/g)].map((m) => [m[1], Number(m[2])]);
    assert.ok(got.filter(([kind, n]) => kind === 'Video' && n > 0).length >= 2, `rusty received ann's and sally's video:\n${out}`);
    assert.ok(got.filter(([kind, n]) => kind === 'Audio' && n > 0).length >= 2, `rusty received ann's and sally's audio:\n${out}`);
    await sally.evaluate(() => window.room.disconnect());
    await sally.close();
    assert.deepEqual(ann.errors.filter((e) => !/insights|favicon/i.test(e)), [], 'no page errors');
    await ann.close();
  });
});

describe('simulcast from the official SDK', () => {
  test('VP8 simulcast (an a=ssrc-group:SIM offer, no RIDs): the server forwards one of its streams, not all of them mixed', async () => {
    const pia = await officialPage('pia');
    const sam = await sdkPage(browser, server, 'sam');
    try {
      await pia.evaluate(() => {
        window.__e2eCamera = { width: 960, height: 540, frameRate: 15 };
      });
      const joined = await connect(pia, 'official-simulcast', { extra: { audio: false, preferredVideoCodecs: [{ codec: 'VP8', simulcast: true }] } });
      assert.ok(!joined.error, JSON.stringify(joined));
      // connect() may resolve before the peer connection has its local
      // description (the SDK negotiates media after `connected`).
      const offer = () => pia.evaluate(() => window.__e2e.pcs.map((pc) => pc.localDescription?.sdp || '').join('\n'));
      await eventually(async () => /a=ssrc-group:SIM \d+ \d+ \d+/.test(await offer()), 'the SDK to offer SSRC-group simulcast', 20_000);
      assert.doesNotMatch(await offer(), /a=rid:/);
      // Packets pia sends on all its video SSRCs (Chromium 156 sends the
      // three munged layers all at full size), and sam receives.
      const sent = () => pia.evaluate(async () => {
        let n = 0;
        let streams = 0;
        for (const pc of window.__e2e.pcs) (await pc.getStats()).forEach((s) => { if (s.type === 'outbound-rtp' && s.kind === 'video' && s.packetsSent) { n += s.packetsSent; streams += 1; } });
        return { n, streams };
      });
      await eventually(async () => (await sent()).streams === 3, 'pia to send three streams', 20_000);

      const token = await server.token('sam');
      await sam.evaluate(async ({ token }) => {
        window.room = await window.Video.connect(token, { name: 'official-simulcast', audio: false, video: false });
        window.room.on('trackSubscribed', (track) => { if (track.kind === 'video') document.body.appendChild(track.attach()); });
      }, { token });
      const received = async () => (await inbound(sam)).filter((s) => s.kind === 'video').reduce((n, s) => n + s.packetsReceived, 0);
      await eventually(async () => (await framesDecoded(sam)) > 10, 'sam decoding', 20_000);
      const [s0, r0, f0] = [(await sent()).n, await received(), await framesDecoded(sam)];
      await new Promise((r) => setTimeout(r, 3_000));
      const [s1, r1, f1] = [(await sent()).n, await received(), await framesDecoded(sam)];
      const share = (r1 - r0) / (s1 - s0);
      console.log(`official simulcast: pia sent ${s1 - s0} packets on 3 SSRCs in 3 s, sam received ${r1 - r0} (${Math.round(share * 100)}%), decoded ${f1 - f0} frames`);
      assert.ok(share < 0.8, `sam receives one stream's packets, not all three (${Math.round(share * 100)}%)`);
      assert.ok(f1 - f0 > 20, `sam keeps decoding (${f1 - f0} frames in 3 s)`);
      assert.deepEqual(pia.errors.filter((e) => !/insights|favicon/i.test(e)), [], 'no page errors');
    } finally {
      await pia.close();
      await sam.close();
    }
  });

  test("adaptive simulcast ('auto', publisher_hints): layers nobody wants are disabled at the publisher, and enabled again when a subscriber asks", async () => {
    const pia = await officialPage('pia');
    const sam = await sdkPage(browser, server, 'sam');
    try {
      await pia.evaluate(() => {
        window.__e2eCamera = { width: 960, height: 540, frameRate: 15 };
      });
      const joined = await connect(pia, 'adaptive-simulcast', { extra: { audio: false, preferredVideoCodecs: 'auto' } });
      assert.ok(!joined.error, JSON.stringify(joined));
      // The SDK's encodings: active flag and frame width, by index.
      const encodings = () => pia.evaluate(async () => {
        const out = [];
        for (const pc of window.__e2e.pcs) {
          if (pc.connectionState === 'closed') continue;
          for (const sender of pc.getSenders()) {
            if (sender.track?.kind !== 'video') continue;
            (sender.getParameters().encodings || []).forEach((e, i) => { out[i] = { active: e.active !== false, scale: e.scaleResolutionDownBy }; });
          }
        }
        return out;
      });
      // With publisher_hints announced the SDK keeps adaptive simulcast:
      // three SIM layers scaled ¼, ½ and full.
      const offer = () => pia.evaluate(() => window.__e2e.pcs.map((pc) => pc.localDescription?.sdp || '').join('\n'));
      await eventually(async () => /a=ssrc-group:SIM \d+ \d+ \d+/.test(await offer()), 'the SDK to keep SSRC-group simulcast', 20_000);
      await eventually(async () => (await encodings()).map((e) => e.scale).join() === '4,2,1', 'encodings scaled 4, 2, 1', 20_000);

      const token = await server.token('sam');
      await sam.evaluate(async ({ token }) => {
        window.room = await window.Video.connect(token, {
          name: 'adaptive-simulcast', audio: false, video: false,
          bandwidthProfile: { video: { contentPreferencesMode: 'manual', clientTrackSwitchOffControl: 'manual' } },
        });
        window.room.on('trackSubscribed', (track) => {
          if (track.kind !== 'video') return;
          window.video = track;
          document.body.appendChild(track.attach());
        });
      }, { token });
      await eventually(() => sam.evaluate(() => Boolean(window.video)), 'sam to subscribe', 20_000);
      await sam.evaluate(() => window.video.setContentPreferences({ renderDimensions: { width: 160, height: 90 } }));
      const width = () => sam.evaluate(async () => {
        let w = 0;
        for (const pc of window.__e2e.pcs) {
          if (pc.connectionState === 'closed') continue;
          (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') w = Math.max(w, s.frameWidth || 0); });
        }
        return w;
      });
      await eventually(async () => (await width()) === 240, 'sam on the 240-wide layer', 20_000);
      const t0 = Date.now();
      await eventually(async () => (await encodings()).map((e) => e.active).join() === 'true,false,false', 'the upper encodings disabled', 20_000);
      const paused = Date.now() - t0;
      const hints = await pia.evaluate(() => window.__e2e.channels.filter((c) => c.label === 'publisher_hints').flatMap((c) => c.messages).map((m) => JSON.parse(m)));
      assert.ok(hints.some((m) => m.type === 'publisher_hints' && m.publisher?.hints?.[0]?.encodings?.some((e) => e.enabled === false)), JSON.stringify(hints));

      const t1 = Date.now();
      await sam.evaluate(() => window.video.setContentPreferences({ renderDimensions: { width: 960, height: 540 } }));
      await eventually(async () => (await width()) === 960, 'sam on the top layer again', 20_000);
      const back = Date.now() - t1;
      assert.equal((await encodings()).map((e) => e.active).join(), 'true,true,true');
      console.log(`adaptive simulcast: pia's upper encodings disabled ${paused} ms after sam settled on 240 wide; 960 wide back at sam in ${back} ms`);
      assert.deepEqual(pia.errors.filter((e) => !/insights|favicon/i.test(e)), [], 'no page errors');
    } finally {
      await pia.close();
      await sam.close();
    }
  });
});
