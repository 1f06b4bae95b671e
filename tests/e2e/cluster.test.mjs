// Two Salon nodes as one service, with the browser SDK: participants whose
// pages come from different nodes land in one room (the SDK follows the
// node's redirect) and see and hear each other; when the room's node is
// SIGKILLed, the SDK rejoins a room of the same name on the live node by
// itself (the same Room: reconnecting, then reconnected); pages with the
// official twilio-video SDK, whose resume reaches the live node, are
// carried into a room of the same name there by the server, their media
// signaling with them (an adaptive-simulcast publisher's unwanted layers
// are disabled again in the new room).
//
// The nodes share a private redis-server (free loopback port, no
// persistence) and one SQLite file (WAL: several processes on one machine
// may share it; production uses PostgreSQL, which crates/salon/tests/
// cluster.rs covers). Skipped with a note when redis-server is missing.
//
//   node --test tests/e2e/cluster.test.mjs

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  assertReceiving, eventually, freePort, launchBrowser, officialSdkPage, outcome, sdkPage, sleep, startServer,
} from './harness.mjs';

const haveRedis = (() => {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let dir;
let redis;
let browser;
/** Every node's --redis-url and --database-url. */
let shared;
const nodes = [];

before(async () => {
  if (!haveRedis) return;
  dir = mkdtempSync(path.join(os.tmpdir(), 'salon-e2e-cluster-'));
  const port = await freePort();
  redis = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  await eventually(() => new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => { socket.end(); resolve(true); });
    socket.on('error', () => resolve(false));
  }), 'redis-server to listen');
  shared = ['--redis-url', `redis://127.0.0.1:${port}`, '--database-url', `sqlite://${dir}/shared.db`];
  nodes.push(await startServer([...shared, '--node-id', 'node-a']));
  nodes.push(await startServer([...shared, '--node-id', 'node-b']));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const node of nodes) await node.stop();
  redis?.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Join `room` as `identity` from a page that node `node` served. */
async function join(node, identity, room) {
  const page = await sdkPage(browser, node, identity);
  const token = await node.token(identity);
  const joined = await outcome(page, async ({ token, room }) => {
    window.room = await window.Video.connect(token, { name: room, audio: true, video: { width: 320 } });
    return { sid: window.room.sid, node: location.origin };
  }, { token, room });
  assert.ok(joined.ok, `${identity} joins through ${node.url}: ${JSON.stringify(joined)}`);
  return { page, sid: joined.value.sid };
}

/** Rooms in progress on `node`, from its /metrics (labelled by node). */
async function roomsOn(node) {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('salon_rooms_in_progress{'));
  return Number(line?.split(' ').pop() ?? NaN);
}

test('participants through two nodes meet in one room and exchange media; completing it ends it, no rejoin', { skip: !haveRedis && 'redis-server is not installed' }, async () => {
  const alice = await join(nodes[0], 'alice', 'two-nodes');
  const bob = await join(nodes[1], 'bob', 'two-nodes');
  assert.equal(bob.sid, alice.sid, 'one room');
  const counts = [await roomsOn(nodes[0]), await roomsOn(nodes[1])];
  assert.deepEqual(counts.sort(), [0, 1], `the room runs on one node: ${counts}`);
  await assertReceiving(alice.page, { videos: 1, audios: 1 });
  await assertReceiving(bob.page, { videos: 1, audios: 1 });
  // Whoever came through the other node was redirected, and said so.
  const redirected = nodes.some((n) => n.log.join('').includes('join redirected to the room\'s node'));
  assert.ok(redirected, 'a node redirected a join');
  // A room completed through REST (on either node) ends for them: 53118,
  // and no rejoin, though the SDK rejoins by itself when a node is lost.
  for (const p of [alice.page, bob.page]) {
    await p.evaluate(() => {
      window.seen = [];
      for (const event of ['reconnecting', 'reconnected', 'disconnected']) {
        window.room.on(event, (...args) => window.seen.push([event, args.find((a) => a && a.code)?.code ?? null]));
      }
    });
  }
  const completed = await nodes[1].rest('POST', `/v1/Rooms/${alice.sid}`, { Status: 'completed' });
  assert.equal(completed.status, 200, JSON.stringify(completed.body));
  for (const p of [alice.page, bob.page]) {
    await eventually(() => p.evaluate(() => window.room.state === 'disconnected'), `${p.identity}'s room to end`);
  }
  await sleep(2_000);
  for (const p of [alice.page, bob.page]) {
    assert.deepEqual(await p.evaluate(() => window.seen), [['disconnected', 53118]], `${p.identity}: ended, no rejoin`);
    assert.deepEqual(p.errors, [], `${p.identity}: no page errors`);
    await p.close();
  }
  assert.deepEqual([await roomsOn(nodes[0]), await roomsOn(nodes[1])], [0, 0], 'no room made again');
});

test('when the room\'s node dies, the pages rejoin a room of the same name on the live node by themselves', { skip: !haveRedis && 'redis-server is not installed' }, async () => {
  const [first] = nodes;
  // Rooms of the test before stay in progress until their empty-room timeout.
  const before = [await roomsOn(nodes[0]), await roomsOn(nodes[1])];
  const created = await first.rest('POST', '/v1/Rooms', { UniqueName: 'phoenix' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const oldRoom = created.body.sid;
  const holder = (await roomsOn(nodes[0])) > before[0] ? 0 : 1;
  const survivor = nodes[1 - holder];
  const survivorRooms = before[1 - holder];
  // Both pages come from the node that will survive (as from a load
  // balancer's address) and are redirected to the room's node.
  const alice = await join(survivor, 'alice', 'phoenix');
  const bob = await join(survivor, 'bob', 'phoenix');
  assert.equal(alice.sid, oldRoom);
  await assertReceiving(alice.page, { videos: 1, audios: 1 });
  await assertReceiving(bob.page, { videos: 1, audios: 1 });
  for (const p of [alice.page, bob.page]) {
    await p.evaluate(() => {
      const room = window.room;
      window.original = room;
      window.seen = [];
      const seen = (event, more) => window.seen.push({ event, at: Date.now(), ...more });
      room.on('reconnecting', (error) => seen('reconnecting', { code: error?.code ?? null, state: room.state }));
      room.on('reconnected', () => seen('reconnected', { sid: room.sid, me: room.localParticipant.sid, state: room.state }));
      room.on('disconnected', (_room, error) => seen('disconnected', { code: error?.code ?? null }));
      room.on('participantDisconnected', (p) => seen('participantDisconnected', { identity: p.identity, sid: p.sid }));
      room.on('participantConnected', (p) => seen('participantConnected', { identity: p.identity, sid: p.sid }));
      room.on('trackSubscribed', (track, _pub, p) => seen('trackSubscribed', { kind: track.kind, identity: p.identity }));
      room.localParticipant.on('trackPublished', (pub) => seen('trackPublished', { kind: pub.kind, sid: pub.trackSid }));
      window.before = { me: room.localParticipant.sid, tracks: [...room.localParticipant.tracks.values()].map((p) => p.track) };
    });
  }
  const killedAt = Date.now();
  nodes[holder].child.kill('SIGKILL');

  // The room is failed (the dead node's lease ran out) …
  await eventually(async () => (await survivor.rest('GET', `/v1/Rooms/${oldRoom}`)).body?.status === 'failed', 'the old room to be failed', 30_000);
  const failedAt = Date.now();
  console.log(`# room failed ${failedAt - killedAt} ms after SIGKILL`);

  // … and each page, without calling connect() again, is back in a room
  // of the same name: the same Room object, reconnecting then reconnected.
  const backAt = {};
  for (const p of [alice.page, bob.page]) {
    const back = await eventually(() => p.evaluate(() => window.seen.find((e) => e.event === 'reconnected' || e.event === 'disconnected')), `${p.identity} to rejoin`, 40_000);
    assert.equal(back.event, 'reconnected', `${p.identity}: ${JSON.stringify(await p.evaluate(() => window.seen))}`);
    const seen = await p.evaluate(() => window.seen);
    const reconnecting = seen.find((e) => e.event === 'reconnecting');
    assert.ok(reconnecting && reconnecting.at <= back.at, `${p.identity}: reconnecting first: ${JSON.stringify(seen)}`);
    assert.equal(reconnecting.code, 53001, JSON.stringify(reconnecting));
    const room = await p.evaluate(() => ({
      same: window.room === window.original,
      name: window.room.name,
      sid: window.room.sid,
      state: window.room.state,
      me: window.room.localParticipant.sid,
      before: window.before.me,
      sameTracks: window.before.tracks.every((t) => [...window.room.localParticipant.tracks.values()].some((pub) => pub.track === t)),
      kinds: [...window.room.localParticipant.tracks.values()].map((pub) => pub.kind).sort(),
    }));
    assert.ok(room.same, 'the same Room');
    assert.equal(room.name, 'phoenix');
    assert.equal(room.state, 'connected');
    assert.notEqual(room.sid, oldRoom, 'a new room');
    assert.equal(back.sid, room.sid);
    assert.notEqual(room.me, room.before, 'a new participant SID');
    assert.ok(room.sameTracks, 'the same LocalTracks, published again');
    assert.deepEqual(room.kinds, ['audio', 'video']);
    const published = seen.filter((e) => e.event === 'trackPublished').map((e) => e.kind).sort();
    assert.deepEqual(published, ['audio', 'video'], `${p.identity}: trackPublished for each track again: ${JSON.stringify(seen)}`);
    const other = p === alice.page ? 'bob' : 'alice';
    assert.ok(seen.some((e) => e.event === 'participantDisconnected' && e.identity === other), `${p.identity}: the old room's ${other} disconnected: ${JSON.stringify(seen)}`);
    backAt[p.identity] = back.at;
    console.log(`# ${p.identity}: reconnecting ${reconnecting.at - killedAt} ms, reconnected ${back.at - killedAt} ms after SIGKILL`);
  }
  // Both in the same new room, seeing each other and their tracks.
  const sids = [await alice.page.evaluate(() => window.room.sid), await bob.page.evaluate(() => window.room.sid)];
  assert.equal(sids[0], sids[1], 'both in one new room');
  for (const p of [alice.page, bob.page]) {
    const other = p === alice.page ? 'bob' : 'alice';
    await eventually(() => p.evaluate((other) => {
      const them = [...window.room.participants.values()].find((q) => q.identity === other);
      return them && window.seen.filter((e) => e.event === 'trackSubscribed' && e.identity === other).length >= 2;
    }, other), `${p.identity} to subscribe to ${other}'s tracks in the new room`, 15_000);
  }
  await eventually(async () => {
    for (const p of [alice.page, bob.page]) {
      const inbound = await p.evaluate(async () => {
        const out = { video: 0, audio: 0 };
        for (const pc of window.__e2e.pcs) {
          if (pc.connectionState === 'closed') continue;
          (await pc.getStats()).forEach((s) => {
            if (s.type === 'inbound-rtp' && s.kind === 'video') out.video += s.framesDecoded || 0;
            if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audio += s.packetsReceived || 0;
          });
        }
        return out;
      });
      if (!(inbound.video > 0 && inbound.audio > 0)) return false;
    }
    return true;
  }, 'media both ways in the new room', 15_000);
  const inCallAt = Date.now();
  console.log(`# both back in a call (media both ways) ${inCallAt - killedAt} ms after SIGKILL, ${inCallAt - failedAt} ms after the room failed`
    + ` (reconnected: ${Math.max(...Object.values(backAt)) - failedAt} ms after)`);
  // Issue #14's targets (failed within 10 s, back in a call within 5 s of
  // that) are the figures printed above, not assertions: a loaded CI
  // machine stretches timings, and speed is measured, not tested. By design
  // a dead node is declared dead at most LEASE + SWEEP + GRACE (8.5 s)
  // after it stopped (crates/salon/src/cluster.rs).
  await assertReceiving(alice.page, { videos: 1, audios: 1 });
  await assertReceiving(bob.page, { videos: 1, audios: 1 });
  assert.equal(await roomsOn(survivor), survivorRooms + 1, 'the new room runs on the live node');
  for (const p of [alice.page, bob.page]) {
    await p.evaluate(() => window.room.disconnect());
    // Chromium logs each socket it could not open to the dead node (the
    // resume's tries) as a console error: those are expected.
    const errors = p.errors.filter((e) => !/^WebSocket connection to .* failed: /.test(e));
    assert.deepEqual(errors, [], `${p.identity}: no page errors`);
    await p.close();
  }
});

test('when the room\'s node drains (SIGTERM), the pages rejoin a room of the same name elsewhere when it ends its rooms', { skip: !haveRedis && 'redis-server is not installed' }, async () => {
  // A third node that drains for 2 s; the live node of the test before
  // is where the pages come from.
  const live = nodes.find((n) => n.child.exitCode === null && n.child.signalCode === null);
  const draining = await startServer([...shared, '--node-id', 'node-c', '--drain-timeout', '2']);
  nodes.push(draining);
  // Placement picks the least-loaded node: the new one, most likely; try
  // a few names until a room lands there.
  let name = null;
  for (let i = 0; i < 5 && !name; i++) {
    const candidate = `drained-${i}`;
    const before = await roomsOn(draining);
    const created = await live.rest('POST', '/v1/Rooms', { UniqueName: candidate });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    if ((await roomsOn(draining)) > before) name = candidate;
    else await live.rest('POST', `/v1/Rooms/${created.body.sid}`, { Status: 'completed' });
  }
  assert.ok(name, 'a room placed on the new node');
  const alice = await join(live, 'alice', name);
  const bob = await join(live, 'bob', name);
  await assertReceiving(bob.page, { videos: 1, audios: 1 });
  for (const p of [alice.page, bob.page]) {
    await p.evaluate(() => {
      window.original = window.room;
      window.seen = [];
      for (const event of ['reconnecting', 'reconnected', 'disconnected']) {
        window.room.on(event, (...args) => window.seen.push({ event, code: args.find((a) => a && a.code)?.code ?? null, at: Date.now() }));
      }
    });
  }
  const termAt = Date.now();
  draining.child.kill('SIGTERM');
  for (const p of [alice.page, bob.page]) {
    const back = await eventually(() => p.evaluate(() => window.seen.find((e) => e.event !== 'reconnecting')), `${p.identity} to rejoin`, 40_000);
    assert.equal(back.event, 'reconnected', JSON.stringify(await p.evaluate(() => window.seen)));
    assert.ok(await p.evaluate(() => window.room === window.original && window.room.state === 'connected'));
    console.log(`# ${p.identity}: reconnected ${back.at - termAt} ms after SIGTERM (drain timeout 2 s)`);
  }
  const sids = [await alice.page.evaluate(() => window.room.sid), await bob.page.evaluate(() => window.room.sid)];
  assert.equal(sids[0], sids[1], 'both in one new room');
  await assertReceiving(alice.page, { videos: 1, audios: 1 });
  await assertReceiving(bob.page, { videos: 1, audios: 1 });
  for (const p of [alice.page, bob.page]) {
    await p.evaluate(() => window.room.disconnect());
    await p.close();
  }
});

/** Join `name` as `identity` with the official SDK, from a page and through the signaling of node `entry`. */
async function officialJoin(entry, identity, name) {
  const page = await officialSdkPage(browser, entry, identity);
  const joined = await outcome(page, async ({ token, name, wsServer }) => {
    const Video = window.Twilio.Video;
    const room = await Video.connect(token, { name, wsServer, insights: false, audio: true, video: { width: 320, height: 240 } });
    window.room = room;
    window.seen = [];
    const seen = (event, more) => window.seen.push({ event, at: Date.now(), ...more });
    room.on('reconnecting', (error) => seen('reconnecting', { code: error?.code ?? null }));
    room.on('reconnected', () => seen('reconnected'));
    room.on('disconnected', (_room, error) => seen('disconnected', { code: error?.code ?? null }));
    room.on('participantDisconnected', (p) => seen('participantDisconnected', { identity: p.identity, sid: p.sid }));
    room.on('participantConnected', (p) => {
      seen('participantConnected', { identity: p.identity, sid: p.sid });
      p.on('trackSubscribed', (track) => seen('trackSubscribed', { identity: p.identity, kind: track.kind }));
    });
    window.before = [...room.localParticipant.tracks.values()].map((pub) => pub.track);
    return room.sid;
  }, { token: page.token, name, wsServer: `${entry.url.replace('http', 'ws')}/signaling` });
  assert.ok(joined.ok, `${identity} joins: ${JSON.stringify(joined)}`);
  return { page, sid: joined.value };
}

/**
 * Each official-SDK page, without calling connect() again: reconnecting
 * (its socket dropped) after `since`, then reconnected in the new room, the
 * same Room with the same tracks; the old room's other participant leaves
 * its view and the new room's arrives with both tracks; media both ways.
 * The new room: `name`, in progress on `live`, with both. When each page
 * was back.
 */
async function carriedOver(pages, { since, live, name, oldRoom }) {
  const backAt = [];
  for (const page of pages) {
    const other = pages.find((p) => p !== page).identity;
    const back = await eventually(() => page.evaluate(() => window.seen.find((e) => e.event === 'reconnected' || e.event === 'disconnected')), `${page.identity} to be carried over`, 40_000);
    const seen = await page.evaluate(() => window.seen);
    assert.equal(back.event, 'reconnected', `${page.identity}: ${JSON.stringify(seen)}`);
    const reconnecting = seen.find((e) => e.event === 'reconnecting');
    assert.ok(reconnecting && reconnecting.at >= since && reconnecting.at <= back.at, `reconnecting first: ${JSON.stringify(seen)}`);
    const state = await page.evaluate(() => ({
      state: window.room.state,
      sameTracks: window.before.every((t) => [...window.room.localParticipant.tracks.values()].some((pub) => pub.track === t)),
    }));
    assert.deepEqual(state, { state: 'connected', sameTracks: true });
    await eventually(() => page.evaluate((other) => {
      const left = window.seen.some((e) => e.event === 'participantDisconnected' && e.identity === other);
      const them = [...window.room.participants.values()].filter((p) => p.identity === other);
      return left && them.length === 1 && window.seen.filter((e) => e.event === 'trackSubscribed' && e.identity === other).length >= 2;
    }, other), `${page.identity} to see ${other} leave the old room and join the new one with both tracks`, 15_000);
    backAt.push(back.at);
  }
  for (const page of pages) await assertReceiving(page, { videos: 1, audios: 1 });
  const rooms = await live.rest('GET', `/v1/Rooms?UniqueName=${name}&Status=in-progress`);
  assert.equal(rooms.body.rooms.length, 1, JSON.stringify(rooms.body));
  const newRoom = rooms.body.rooms[0].sid;
  assert.notEqual(newRoom, oldRoom);
  const participants = await live.rest('GET', `/v1/Rooms/${newRoom}/Participants?Status=connected`);
  assert.deepEqual(participants.body.participants.map((p) => p.identity).sort(), pages.map((p) => p.identity).sort());
  for (const page of pages) {
    await page.evaluate(() => window.room.disconnect());
    // The SDK logs its socket's drop as an error event of its own.
    const errors = page.errors.filter((e) => !/group: signaling, level: error, name: closed/.test(e));
    assert.deepEqual(errors, [], `${page.identity}: no page errors`);
    await page.close();
  }
  await eventually(async () => (await live.rest('GET', `/v1/Rooms/${newRoom}/Participants?Status=connected`)).body.participants.length === 0, 'both to leave the new room');
  return backAt;
}

/** A live node of the tests before, and a new node `id` started with `extra`. */
async function liveAndNew(id, extra = []) {
  const live = nodes.find((n) => n.child.exitCode === null && n.child.signalCode === null);
  const fresh = await startServer([...shared, '--node-id', id, ...extra]);
  nodes.push(fresh);
  return [live, fresh];
}

test('when the room\'s node dies, official twilio-video pages are carried into a room of the same name on a live node', { skip: !haveRedis && 'redis-server is not installed' }, async () => {
  // The room goes where placement puts it; the pages come from the other
  // node, as from a load balancer's address, and their signaling is
  // proxied to the room's node, which then dies.
  const pair = await liveAndNew('node-d');
  const name = 'official-phoenix';
  const before = [await roomsOn(pair[0]), await roomsOn(pair[1])];
  const created = await pair[0].rest('POST', '/v1/Rooms', { UniqueName: name });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const oldRoom = created.body.sid;
  const [holder, live] = (await roomsOn(pair[0])) > before[0] ? pair : [pair[1], pair[0]];
  const pages = [];
  for (const identity of ['ann', 'ben']) {
    const { page, sid } = await officialJoin(live, identity, name);
    assert.equal(sid, oldRoom);
    pages.push(page);
  }
  for (const page of pages) await assertReceiving(page, { videos: 1, audios: 1 });
  assert.ok(live.log.join('').includes('twilio signaling proxied to the room\'s node'), 'the live node proxied the signaling');

  const killedAt = Date.now();
  holder.child.kill('SIGKILL');
  await eventually(async () => (await live.rest('GET', `/v1/Rooms/${oldRoom}`)).body?.status === 'failed', 'the old room to be failed', 30_000);
  const failedAt = Date.now();
  const backAt = await carriedOver(pages, { since: killedAt, live, name, oldRoom });
  console.log(`# room failed ${failedAt - killedAt} ms after SIGKILL; both reconnected ${Math.max(...backAt) - failedAt} ms after that`);
  const adopted = live.log.join('').split('session of a lost node adopted').length - 1;
  assert.equal(adopted, 2, 'the live node adopted both sessions');
});

test('when the room\'s node drains (SIGTERM), official twilio-video pages are carried into a room of the same name when it ends its rooms', { skip: !haveRedis && 'redis-server is not installed' }, async () => {
  const [live, draining] = await liveAndNew('node-e', ['--drain-timeout', '2']);
  // Placement picks the least-loaded node; rooms that land on the live
  // node stay (and make it busier) until one lands on the new node.
  let name = null;
  let oldRoom = null;
  for (let i = 0; i < 6 && !name; i++) {
    const before = await roomsOn(draining);
    const created = await live.rest('POST', '/v1/Rooms', { UniqueName: `official-drained-${i}` });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    if ((await roomsOn(draining)) > before) [name, oldRoom] = [`official-drained-${i}`, created.body.sid];
  }
  assert.ok(name, 'a room placed on the new node');
  const pages = [];
  for (const identity of ['cat', 'dan']) pages.push((await officialJoin(live, identity, name)).page);
  for (const page of pages) await assertReceiving(page, { videos: 1, audios: 1 });
  const termAt = Date.now();
  draining.child.kill('SIGTERM');
  const backAt = await carriedOver(pages, { since: termAt, live, name, oldRoom });
  console.log(`# both reconnected ${Math.max(...backAt) - termAt} ms after SIGTERM (drain timeout 2 s)`);
  const old = await live.rest('GET', `/v1/Rooms/${oldRoom}`);
  assert.equal(old.body.status, 'completed', JSON.stringify(old.body));
});

test('an official twilio-video publisher carried to a live node keeps adaptive simulcast: the new room\'s publisher hints name the tracks by the SIDs it knows', { skip: !haveRedis && 'redis-server is not installed' }, async () => {
  const pair = await liveAndNew('node-f');
  const name = 'official-adaptive';
  const before = [await roomsOn(pair[0]), await roomsOn(pair[1])];
  const created = await pair[0].rest('POST', '/v1/Rooms', { UniqueName: name });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const [holder, live] = (await roomsOn(pair[0])) > before[0] ? pair : [pair[1], pair[0]];
  const wsServer = `${live.url.replace('http', 'ws')}/signaling`;

  // Pia publishes a 960×540 camera in the SDK's adaptive simulcast; Sam
  // renders it at 160×90, so her upper layers are wanted by nobody.
  const pia = await officialSdkPage(browser, live, 'pia');
  const sam = await officialSdkPage(browser, live, 'sam');
  try {
    const joined = await outcome(pia, async ({ token, name, wsServer }) => {
      window.__e2eCamera = { width: 960, height: 540, frameRate: 15 };
      window.room = await window.Twilio.Video.connect(token, { name, wsServer, insights: false, audio: false, video: true, preferredVideoCodecs: 'auto' });
      window.room.on('reconnected', () => { window.reconnected = true; });
    }, { token: pia.token, name, wsServer });
    assert.ok(joined.ok, JSON.stringify(joined));
    const subscribed = await outcome(sam, async ({ token, name, wsServer }) => {
      window.room = await window.Twilio.Video.connect(token, {
        name, wsServer, insights: false, audio: false, video: false,
        bandwidthProfile: { video: { contentPreferencesMode: 'manual', clientTrackSwitchOffControl: 'manual' } },
      });
      window.room.on('trackSubscribed', (track) => {
        if (track.kind !== 'video') return;
        document.body.appendChild(track.attach());
        track.setContentPreferences({ renderDimensions: { width: 160, height: 90 } });
      });
    }, { token: sam.token, name, wsServer });
    assert.ok(subscribed.ok, JSON.stringify(subscribed));
    // Pia's encodings on her open peer connection, and the track SIDs the
    // server's publisher hints named.
    const state = () => pia.evaluate(() => {
      const active = [];
      for (const pc of window.__e2e.pcs) {
        if (pc.connectionState === 'closed') continue;
        for (const sender of pc.getSenders()) {
          if (sender.track?.kind !== 'video') continue;
          (sender.getParameters().encodings || []).forEach((e, i) => { active[i] = e.active !== false; });
        }
      }
      const hinted = window.__e2e.channels.filter((c) => c.label === 'publisher_hints').flatMap((c) => c.messages)
        .map((m) => JSON.parse(m)).flatMap((m) => m.publisher?.hints ?? []).map((h) => h.track);
      const known = [...window.room.localParticipant.videoTracks.values()].map((p) => p.trackSid);
      return { active: active.join(), hinted, known, pcs: window.__e2e.pcs.length };
    });
    await eventually(async () => (await state()).active === 'true,false,false', 'pia\'s upper encodings disabled', 30_000);
    const first = await state();

    holder.child.kill('SIGKILL');
    await eventually(() => pia.evaluate(() => window.reconnected === true), 'pia to be carried over', 40_000);
    // A new peer connection, whose encodings start all active; the new
    // room's hints disable the upper ones again, naming her track by the
    // SID she has had since she joined.
    let last = null;
    await eventually(async () => {
      last = await state();
      return last.pcs > first.pcs && last.active === 'true,false,false';
    }, 'pia\'s upper encodings disabled again in the new room', 40_000).catch(async (e) => {
      const channels = (page) => page.evaluate(() => window.__e2e.channels.map((c) => `${c.label}:${c.messages.length}:${c.channel.readyState}`));
      throw new Error(`${e.message}: ${JSON.stringify(last)}; pia's channels ${await channels(pia)}; sam's ${await channels(sam)}`);
    });
    assert.deepEqual(last.known, first.known, 'the SDK keeps its track SID');
    const lateHints = last.hinted.slice(first.hinted.length);
    assert.ok(lateHints.length > 0 && lateHints.every((sid) => sid === last.known[0]), JSON.stringify(last));
    const rooms = await live.rest('GET', `/v1/Rooms?UniqueName=${name}&Status=in-progress`);
    assert.equal(rooms.body.rooms.length, 1, JSON.stringify(rooms.body));
    const tracks = await live.rest('GET', `/v1/Rooms/${rooms.body.rooms[0].sid}/Participants/pia/PublishedTracks`);
    assert.ok(tracks.body.published_tracks?.length === 1 && tracks.body.published_tracks[0].sid !== last.known[0], `the new room's track has a SID of its own: ${JSON.stringify(tracks.body)}`);
  } finally {
    for (const page of [pia, sam]) {
      await page.evaluate(() => window.room?.disconnect()).catch(() => {});
      await page.close();
    }
  }
});
