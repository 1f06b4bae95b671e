// Recordings and compositions of real browser media: two Chromium
// participants (fake camera; alice's microphone is Chromium's fake beep,
// bob's a WAV file of a 3 kHz tone) in a room recorded from the start, for
// about ten seconds, alice muting both tracks in the middle. Then:
//
// - the room lists one `completed` recording per track, with the right
//   codec (ffprobe) and a duration within 0.5 s of the track's life;
// - `ffmpeg -v error -f null -` decodes every frame of every file without a
//   word on stderr;
// - alice's mute shows in her files as a gap of its length;
// - a grid composition (mp4) of the room, made with the command line
//   (`salon compositions create`, `list`, `download`), becomes
//   `completed`, decodes, has both participants' video side by side and
//   both microphones mixed, and lasts as long as the room.
//
// And a browser that publishes H.264 and G.711 μ-law is recorded as H.264
// (its SPS and PPS in the file's avcC) and PCMU (A_MS/ACM in .mka), both of
// which decode. And recording rules changed during a room stop and start
// its recording as the page sees it (`recordingStopped`,
// `recordingStarted`, `room.isRecording`), one recording per stretch.
//
// Durations are measured from each recording's `offset` (when its first
// frame arrived), so a slow start under load does not count against it.
//
//   node --test tests/e2e/recordings.test.mjs   (needs target/debug/salon and Debian's ffmpeg;
//                                                SALON_E2E_KEEP=1 keeps the files in /tmp)

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS, CREDENTIALS, eventually, repo, sdkPage, sleep, startServer } from './harness.mjs';

const MUTE_MS = 3_000;
const BOB_TONE_HZ = 3_000;

let server;
let browsers = [];
let work;

const ffmpegPresent = spawnSync('ffprobe', ['-version']).status === 0;

before(async () => {
  if (!ffmpegPresent) return;
  work = mkdtempSync(path.join(os.tmpdir(), 'salon-e2e-recordings-'));
  // Bob's microphone: a 3 kHz tone, 30 s, 48 kHz mono (Chromium loops it).
  const wav = path.join(work, 'tone.wav');
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=${BOB_TONE_HZ}:sample_rate=48000:duration=30`, '-ac', '1', wav]);
  server = await startServer();
  // A browser each: the fake microphone's source is a browser-wide flag.
  const launch = (extra) => chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: [...CHROMIUM_FLAGS, ...extra] });
  browsers = [await launch([]), await launch([`--use-file-for-fake-audio-capture=${wav}`])];
});

after(async () => {
  for (const b of browsers) await b.close();
  await server?.stop();
  if (work && !process.env.SALON_E2E_KEEP) rmSync(work, { recursive: true, force: true });
});

/** Run a program; its stdout, or throw with its stderr. */
function run(program, args, env = process.env) {
  const r = spawnSync(program, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env });
  if (r.status !== 0) throw new Error(`${program} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r;
}

const probe = (file, extra = []) => JSON.parse(run('ffprobe', ['-v', 'error', '-of', 'json', '-show_format', '-show_streams', ...extra, file]).stdout);

/**
 * Every frame decodes: ffmpeg says nothing at -v error. The frames keep the
 * file's own times (`-fps_mode passthrough -enc_time_base -1`): a browser's
 * frames are not evenly spaced, and by default ffmpeg re-times them to a
 * frame rate it guesses from the first few, where two frames closer than
 * one guessed interval collide ("non monotonically increasing dts") in a
 * file that is fine.
 */
function assertDecodes(file) {
  const r = run('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-i', file, '-fps_mode', 'passthrough', '-enc_time_base', '-1', '-f', 'null', '-']);
  assert.equal(r.stderr.trim(), '', `ffmpeg decoding ${path.basename(file)} complained`);
}

/** Packet times (s) of the file's first stream. */
const packetTimes = (file) => probe(file, ['-show_packets'])
  .packets.map((p) => Number(p.pts_time))
  .sort((a, b) => a - b);

/** The widest gap between consecutive packets, and where it starts. */
function widestGap(times) {
  let widest = { at: 0, length: 0 };
  for (let i = 1; i < times.length; i++) {
    if (times[i] - times[i - 1] > widest.length) widest = { at: times[i - 1], length: times[i] - times[i - 1] };
  }
  return widest;
}

/** Mean volume (dB) of `file`'s audio between `from` and `to` s after `filter`. */
function meanVolume(file, from, to, filter) {
  const r = run('ffmpeg', ['-hide_banner', '-nostdin', '-ss', String(from), '-to', String(to), '-i', file, '-vn', '-af', `${filter}volumedetect`, '-f', 'null', '-']);
  const m = /mean_volume: (-?[\d.]+|-inf) dB/.exec(r.stderr);
  assert.ok(m, `volumedetect said: ${r.stderr}`);
  return m[1] === '-inf' ? -Infinity : Number(m[1]);
}

/**
 * Mean saturation of the left and right halves of the frame at `t` s: an
 * empty (black) grid cell is 0, Chromium's green fake camera about 180
 * (its brightness pulses, so luma would not tell a dark frame from none).
 */
function halves(file, t) {
  return ['0', 'iw/2'].map((x) => {
    const r = run('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'info', '-ss', String(t), '-i', file, '-frames:v', '1', '-vf', `crop=iw/2:ih:${x}:0,signalstats,metadata=print:key=lavfi.signalstats.SATAVG`, '-f', 'null', '-']);
    const m = /SATAVG=([\d.]+)/.exec(r.stderr);
    assert.ok(m, `signalstats at ${t} s: ${r.stderr}`);
    return Number(m[1]);
  });
}

/**
 * `salon ARGS` beside the server, as its operator would run it (the same
 * data directory and credentials, `--url` pointing at it): its stdout.
 */
function salon(...args) {
  const binary = process.env.SALON_BIN || path.join(repo, 'target', 'debug', 'salon');
  const env = { ...process.env, ...CREDENTIALS, NO_COLOR: '1' };
  return run(binary, ['--data-dir', server.dataDir, ...args, '--url', server.url], env).stdout;
}

/** `salon ARGS --json`: what it printed, read as JSON. */
const salonJson = (...args) => JSON.parse(salon(...args, '--json'));

/** Download a resource's media through its `/Media` redirect. */
async function download(route, file) {
  const auth = 'Basic ' + Buffer.from(`${CREDENTIALS.SALON_API_KEY}:${CREDENTIALS.SALON_API_SECRET}`).toString('base64');
  const redirect = await fetch(`${server.url}${route}`, { headers: { authorization: auth }, redirect: 'manual' });
  assert.equal(redirect.status, 302, `${route} redirects`);
  const signed = new URL(redirect.headers.get('location'));
  const media = await fetch(`${server.url}${signed.pathname}${signed.search}`);
  assert.equal(media.status, 200, `the signed link of ${route} serves the file`);
  const bytes = Buffer.from(await media.arrayBuffer());
  writeFileSync(file, bytes);
  return bytes.length;
}

test('a recorded room of two browsers gives playable per-track recordings with the mute as a gap, and a grid composition of both', { skip: !ffmpegPresent && 'ffmpeg is not installed (apt-get install ffmpeg)', timeout: 240_000 }, async () => {
  const createdAt = Date.now();
  const created = await server.rest('POST', '/v1/Rooms', { UniqueName: 'recorded', Type: 'group', RecordParticipantsOnConnect: 'true' });
  created.at = createdAt;
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const roomSid = created.body.sid;

  const join = async (browser, identity) => {
    const page = await sdkPage(browser, server, identity);
    const token = await server.token(identity);
    await page.evaluate(async (token) => {
      window.room = await window.Video.connect(token, { name: 'recorded', audio: true, video: { width: 320, height: 240, frameRate: 15 } });
      window.recordingStarted = new Promise((resolve) => {
        if (window.room.isRecording) resolve();
        else window.room.once('recordingStarted', resolve);
      });
    }, token);
    return { page, identity, joined: Date.now() };
  };
  const alice = await join(browsers[0], 'alice');
  const bob = await join(browsers[1], 'bob');
  for (const p of [alice, bob]) await p.page.evaluate(() => window.recordingStarted);

  // Every track is being recorded: four `processing` recordings.
  await eventually(async () => {
    const { body } = await server.rest('GET', `/v1/Rooms/${roomSid}/Recordings`);
    return body.recordings.length === 4 && body.recordings;
  }, 'four recordings', 15_000);

  await sleep(3_000);
  const setEnabled = (enabled) => alice.page.evaluate((enabled) => {
    for (const pub of window.room.localParticipant.tracks.values()) {
      if (enabled) pub.track.enable();
      else pub.track.disable();
    }
  }, enabled);
  await setEnabled(false);
  const muted = Date.now();
  await sleep(MUTE_MS);
  await setEnabled(true);
  const unmuted = Date.now();
  await sleep(4_000);

  const leave = async (p) => {
    await p.page.evaluate(() => window.room.disconnect());
    p.left = Date.now();
    await p.page.close();
  };
  await leave(alice);
  await leave(bob);
  const ended = await server.rest('POST', `/v1/Rooms/${roomSid}`, { Status: 'completed' });
  assert.equal(ended.status, 200, JSON.stringify(ended.body));

  const recordings = await eventually(async () => {
    const { body } = await server.rest('GET', `/v1/Rooms/${roomSid}/Recordings`);
    return body.recordings.every((r) => r.status !== 'processing') && body.recordings;
  }, 'the recordings to finish', 30_000);
  assert.equal(recordings.length, 4, JSON.stringify(recordings));

  const participants = (await server.rest('GET', `/v1/Rooms/${roomSid}/Participants`)).body.participants;
  const identityOf = Object.fromEntries(participants.map((p) => [p.sid, p.identity]));
  const byWho = {};
  for (const r of recordings) {
    assert.equal(r.status, 'completed', JSON.stringify(r));
    const who = identityOf[r.grouping_sids.participant_sid];
    assert.ok(who, `recording ${r.sid} belongs to alice or bob: ${JSON.stringify(r.grouping_sids)}`);
    const file = path.join(work, `${who}-${r.type}.${r.container_format}`);
    const size = await download(`/v1/Recordings/${r.sid}/Media`, file);
    assert.equal(size, r.size, `${r.sid}: the file has the size the API says`);
    byWho[`${who}-${r.type}`] = { r, file };
  }
  assert.deepEqual(Object.keys(byWho).sort(), ['alice-audio', 'alice-video', 'bob-audio', 'bob-video']);

  // A track's life in its recording: from its first frame (the
  // recording's `offset`, when that frame arrived; the browser needs a
  // moment after joining to connect and send a keyframe) to its leaving.
  const left = { alice: alice.left, bob: bob.left };
  for (const [key, { r, file }] of Object.entries(byWho)) {
    const who = key.split('-')[0];
    const info = probe(file);
    const stream = info.streams[0];
    assert.equal(info.streams.length, 1, `${key}: one track per file`);
    if (r.type === 'audio') {
      assert.equal(r.codec, 'opus');
      assert.equal(r.container_format, 'mka');
      assert.equal(stream.codec_name, 'opus', `${key}: ${JSON.stringify(stream)}`);
    } else {
      assert.equal(r.codec, 'VP8');
      assert.equal(r.container_format, 'mkv');
      assert.equal(stream.codec_name, 'vp8', `${key}: ${JSON.stringify(stream)}`);
      assert.equal(`${stream.width}x${stream.height}`, '320x240', `${key}: the camera's size`);
    }
    const duration = Number(info.format.duration);
    const life = (left[who] - r.offset) / 1000;
    assert.ok(r.offset >= created.at && r.offset - (who === 'alice' ? alice : bob).joined < 8_000, `${key}: the recording starts soon after joining (offset ${r.offset})`);
    assert.ok(Math.abs(duration - life) <= 0.5, `${key}: ffprobe says ${duration} s, the track lived ${life} s in it`);
    // Twilio's `duration` is whole seconds.
    assert.ok(Math.abs(r.duration - duration) <= 1, `${key}: the API says ${r.duration} s, ffprobe ${duration} s`);
    assertDecodes(file);

    const gap = widestGap(packetTimes(file));
    if (who === 'alice') {
      const mute = (unmuted - muted) / 1000;
      const startsAt = (muted - r.offset) / 1000;
      assert.ok(Math.abs(gap.length - mute) <= 0.5, `${key}: the widest gap is ${gap.length.toFixed(3)} s at ${gap.at} s; the mute was ${mute} s at ${startsAt.toFixed(3)} s`);
      assert.ok(Math.abs(gap.at - startsAt) <= 0.7, `${key}: the gap starts at ${gap.at} s, the mute at ${startsAt.toFixed(3)} s`);
    } else {
      assert.ok(gap.length < 0.7, `${key}: bob never muted, yet a gap of ${gap.length.toFixed(3)} s at ${gap.at} s`);
    }
  }
  // Bob's microphone is the WAV's tone (nearly all its sound is in a band
  // around 3 kHz); alice's is Chromium's beep (little of it is there).
  const tone = `bandpass=f=${BOB_TONE_HZ}:width_type=h:w=200,`;
  const bob3k = meanVolume(byWho['bob-audio'].file, 1, 4, tone);
  const bobAll = meanVolume(byWho['bob-audio'].file, 1, 4, '');
  assert.ok(bobAll > -40 && bob3k > bobAll - 3, `bob's recording is his 3 kHz tone (${bob3k} dB of ${bobAll} dB)`);
  const alice3k = meanVolume(byWho['alice-audio'].file, 1, 3, tone);
  const aliceAll = meanVolume(byWho['alice-audio'].file, 1, 3, '');
  assert.ok(aliceAll > -40 && alice3k < aliceAll - 15, `alice's recording is her beep, not bob's tone (${alice3k} dB of ${aliceAll} dB)`);

  // A composition of the room, made with the command line as an operator
  // would (`salon compositions create`, `list`, `download`): both cameras
  // side by side, both microphones. Its defaults are a grid of every
  // camera and every microphone.
  const room = (await server.rest('GET', `/v1/Rooms/${roomSid}`)).body;
  const composed = salonJson('compositions', 'create', roomSid, '--format', 'mp4', '--resolution', '640x240', '--trim', 'false');
  assert.equal(composed.status, 'enqueued', JSON.stringify(composed));
  assert.deepEqual(composed.video_layout, { grid: { video_sources: ['*'] } });
  assert.deepEqual(composed.audio_sources, ['*']);
  assert.equal(composed.trim, false);
  const composition = await eventually(async () => {
    const listed = salonJson('compositions', 'list', '--room', roomSid);
    assert.equal(listed.length, 1, JSON.stringify(listed));
    assert.notEqual(listed[0].status, 'failed', JSON.stringify(listed[0]));
    return listed[0].status === 'completed' && listed[0];
  }, 'the composition to complete', 120_000);
  assert.equal(composition.sid, composed.sid);
  const mp4 = path.join(work, 'composition.mp4');
  salon('compositions', 'download', composition.sid, '-o', mp4);
  assert.equal(statSync(mp4).size, composition.size, 'the download has the size the API says');
  const info = probe(mp4);
  const video = info.streams.find((s) => s.codec_type === 'video');
  const audio = info.streams.find((s) => s.codec_type === 'audio');
  assert.ok(video && audio, `video and audio: ${JSON.stringify(info.streams)}`);
  assert.equal(video.codec_name, 'h264');
  assert.equal(`${video.width}x${video.height}`, '640x240');
  assertDecodes(mp4);
  const duration = Number(info.format.duration);
  assert.ok(Math.abs(duration - room.duration) <= 1.5, `the composition lasts ${duration} s, the room ${room.duration} s`);
  // Both cameras are in the grid once both have joined: two lit halves.
  // The timeline starts at the room's creation (Trim=false); both cameras
  // are in once the later video recording has started.
  const bothIn = (Math.max(byWho['alice-video'].r.offset, byWho['bob-video'].r.offset) - created.at) / 1000 + 1.5;
  const [leftCell, rightCell] = halves(mp4, Math.min(bothIn, duration - 1));
  assert.ok(leftCell > 50 && rightCell > 50, `both halves of the grid show a camera (saturation ${leftCell}, ${rightCell})`);
  const [emptyLeft, emptyRight] = halves(mp4, 0.1);
  assert.ok(emptyLeft < 5 && emptyRight < 5, `before anyone joined the grid is black (saturation ${emptyLeft}, ${emptyRight})`);
  // Mixed audio: bob's tone, and alice's beep besides it.
  // (Bob's tone below 2 kHz is about -40 dB; alice's beep about -21 dB.)
  const mixedTone = meanVolume(mp4, bothIn, bothIn + 2, tone);
  const mixedLow = meanVolume(mp4, bothIn, bothIn + 2, 'lowpass=f=2000,lowpass=f=2000,');
  assert.ok(mixedTone > bob3k - 6, `the composition has bob's tone (${mixedTone} dB)`);
  assert.ok(mixedLow > aliceAll - 6, `the composition has alice's beep (${mixedLow} dB below 2 kHz)`);
});

test('a browser publishing H.264 and G.711 is recorded as H.264 and PCMU in Matroska that decodes', { skip: !ffmpegPresent && 'ffmpeg is not installed (apt-get install ffmpeg)', timeout: 120_000 }, async () => {
  const created = await server.rest('POST', '/v1/Rooms', { UniqueName: 'recorded-h264', Type: 'group', RecordParticipantsOnConnect: 'true' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const roomSid = created.body.sid;
  // Bob's browser: its microphone is the 3 kHz tone, which G.711's 8 kHz
  // sampling still carries.
  const page = await sdkPage(browsers[1], server, 'carol');
  const token = await server.token('carol');
  const joined = Date.now();
  await page.evaluate(async (token) => {
    window.room = await window.Video.connect(token, {
      name: 'recorded-h264',
      audio: true,
      video: { width: 320, height: 240, frameRate: 15 },
      preferredVideoCodecs: ['H264'],
      preferredAudioCodecs: ['PCMU'],
    });
  }, token);
  await sleep(5_000);
  await page.evaluate(() => window.room.disconnect());
  const left = Date.now();
  await page.close();
  const recordings = await eventually(async () => {
    const { body } = await server.rest('GET', `/v1/Rooms/${roomSid}/Recordings`);
    return body.recordings.length === 2 && body.recordings.every((r) => r.status !== 'processing') && body.recordings;
  }, 'the recordings to finish', 30_000);
  const byType = Object.fromEntries(recordings.map((r) => [r.type, r]));
  for (const [type, codec, container, decoded] of [['video', 'H264', 'mkv', 'h264'], ['audio', 'PCMU', 'mka', 'pcm_mulaw']]) {
    const r = byType[type];
    assert.equal(r?.status, 'completed', JSON.stringify(recordings));
    assert.equal(r.codec, codec);
    assert.equal(r.container_format, container);
    const file = path.join(work, `carol-${type}.${container}`);
    await download(`/v1/Recordings/${r.sid}/Media`, file);
    const info = probe(file);
    assert.equal(info.streams[0].codec_name, decoded, JSON.stringify(info.streams[0]));
    if (type === 'video') assert.equal(`${info.streams[0].width}x${info.streams[0].height}`, '320x240');
    else assert.equal(`${info.streams[0].sample_rate}/${info.streams[0].channels}`, '8000/1');
    const duration = Number(info.format.duration);
    const life = (left - r.offset) / 1000;
    assert.ok(r.offset - joined < 8_000, `${type}: the recording starts soon after joining (offset ${r.offset}, joined ${joined})`);
    assert.ok(Math.abs(duration - life) <= 0.5, `${type}: ffprobe says ${duration} s, the track lived ${life} s in it`);
    assertDecodes(file);
    if (type === 'audio') {
      const tone = `bandpass=f=${BOB_TONE_HZ}:width_type=h:w=200,`;
      const at3k = meanVolume(file, 1, 3, tone);
      const all = meanVolume(file, 1, 3, '');
      assert.ok(all > -40 && at3k > all - 3, `the PCMU recording is the 3 kHz tone (${at3k} dB of ${all} dB)`);
    }
  }
});

test('recording rules changed during the room stop and start its recording: recordingStopped, recordingStarted, a recording for each stretch', { skip: !ffmpegPresent && 'ffmpeg is not installed (apt-get install ffmpeg)', timeout: 120_000 }, async () => {
  const created = await server.rest('POST', '/v1/Rooms', { UniqueName: 'ruled', Type: 'group' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const roomSid = created.body.sid;
  const rules = (list) => server.rest('POST', `/v1/Rooms/${roomSid}/RecordingRules`, { Rules: JSON.stringify(list) });
  const page = await sdkPage(browsers[0], server, 'dave');
  const token = await server.token('dave');
  await page.evaluate(async (token) => {
    window.room = await window.Video.connect(token, { name: 'ruled', audio: true, video: false });
    window.recordingEvents = [];
    for (const event of ['recordingStarted', 'recordingStopped']) {
      window.room.on(event, () => window.recordingEvents.push([event, window.room.isRecording]));
    }
  }, token);
  const seen = () => page.evaluate(() => ({ isRecording: window.room.isRecording, events: window.recordingEvents }));
  assert.deepEqual(await seen(), { isRecording: false, events: [] }, 'a room without rules records nothing');

  const wait = (n, what) => eventually(async () => {
    const s = await seen();
    return s.events.length >= n && s;
  }, what, 15_000);
  assert.equal((await rules([{ type: 'include', all: true }])).status, 200);
  assert.deepEqual((await wait(1, 'recordingStarted')).events, [['recordingStarted', true]]);
  await sleep(2_000);
  assert.equal((await rules([{ type: 'exclude', all: true }])).status, 200);
  const stopped = await wait(2, 'recordingStopped');
  assert.deepEqual(stopped.events[1], ['recordingStopped', false]);
  assert.equal(stopped.isRecording, false);
  await sleep(1_000);
  assert.equal((await rules([{ type: 'include', kind: 'audio' }])).status, 200);
  assert.deepEqual((await wait(3, 'recordingStarted again')).events[2], ['recordingStarted', true]);
  await sleep(2_000);
  await page.evaluate(() => window.room.disconnect());
  await page.close();

  // One recording per stretch the rules allowed, both of the same track,
  // each completed and about two seconds long.
  const recordings = await eventually(async () => {
    const { body } = await server.rest('GET', `/v1/Rooms/${roomSid}/Recordings`);
    return body.recordings.length === 2 && body.recordings.every((r) => r.status !== 'processing') && body.recordings;
  }, 'two recordings to finish', 30_000);
  assert.equal(new Set(recordings.map((r) => r.source_sid)).size, 1, JSON.stringify(recordings));
  for (const r of recordings) {
    assert.equal(r.status, 'completed', JSON.stringify(r));
    assert.equal(r.type, 'audio');
    assert.ok(r.duration >= 1 && r.duration <= 4, `${r.sid} lasts ${r.duration} s`);
  }
});
