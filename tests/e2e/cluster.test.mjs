// Two Salon nodes as one service, with the browser SDK: participants whose
// pages come from different nodes land in one room (the SDK follows the
// node's redirect) and see and hear each other.
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
  assertReceiving, eventually, freePort, launchBrowser, outcome, sdkPage, sleep, startServer,
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
  const shared = ['--redis-url', `redis://127.0.0.1:${port}`, '--database-url', `sqlite://${dir}/shared.db`];
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

test('participants through two nodes meet in one room and exchange media', { skip: !haveRedis && 'redis-server is not installed' }, async () => {
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
  for (const p of [alice.page, bob.page]) {
    await p.evaluate(() => window.room.disconnect());
    assert.deepEqual(p.errors, [], `${p.identity}: no page errors`);
    await p.close();
  }
  await sleep(100);
});

test('when the room\'s node dies, the room ends soon with 53001 and joining again lands on a live node', { skip: !haveRedis && 'redis-server is not installed' }, async () => {
  const [first] = nodes;
  // Rooms of the test before stay in progress until their empty-room timeout.
  const before = [await roomsOn(nodes[0]), await roomsOn(nodes[1])];
  const created = await first.rest('POST', '/v1/Rooms', { UniqueName: 'phoenix' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const holder = (await roomsOn(nodes[0])) > before[0] ? 0 : 1;
  const survivor = nodes[1 - holder];
  const survivorRooms = before[1 - holder];
  // Both pages come from the node that will survive (as from a load
  // balancer's address) and are redirected to the room's node.
  const alice = await join(survivor, 'alice', 'phoenix');
  const bob = await join(survivor, 'bob', 'phoenix');
  assert.equal(alice.sid, created.body.sid);
  await assertReceiving(bob.page, { videos: 1, audios: 1 });
  for (const p of [alice.page, bob.page]) {
    await p.evaluate(() => {
      window.ended = null;
      window.room.on('disconnected', (_room, error) => { window.ended = { code: error?.code ?? null, at: Date.now() }; });
    });
  }
  const killedAt = Date.now();
  nodes[holder].child.kill('SIGKILL');
  for (const p of [alice.page, bob.page]) {
    const ended = await eventually(() => p.evaluate(() => window.ended), `${p.identity}'s room to end`, 30_000);
    assert.equal(ended.code, 53001, JSON.stringify(ended));
    console.log(`# ${p.identity}: disconnected ${ended.at - killedAt} ms after SIGKILL`);
  }
  // The app joins again: once the dead node's room is failed, a new room of
  // the same name on the live node.
  for (const p of [alice.page, bob.page]) {
    const token = await survivor.token(p.identity);
    await eventually(async () => (await outcome(p, async (token) => {
      window.room = await window.Video.connect(token, { name: 'phoenix', audio: true, video: { width: 320 } });
      return window.room.sid;
    }, token)).ok, `${p.identity} to join phoenix again`, 30_000);
  }
  console.log(`# both back in a call ${Date.now() - killedAt} ms after SIGKILL`);
  await assertReceiving(alice.page, { videos: 1, audios: 1 });
  await assertReceiving(bob.page, { videos: 1, audios: 1 });
  const again = await alice.page.evaluate(() => window.room.sid);
  assert.notEqual(again, created.body.sid, 'a new room');
  assert.equal(await roomsOn(survivor), survivorRooms + 1, 'the new room runs on the live node');
  for (const p of [alice.page, bob.page]) {
    await p.evaluate(() => window.room.disconnect());
    await p.close();
  }
});
