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
