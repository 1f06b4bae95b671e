// ICE over TCP in real Chromium: a participant whose network drops every
// UDP packet (its own network namespace, with an nftables rule) connects to
// the media port's passive TCP candidate, without TURN, and exchanges audio
// and video with a participant on the ordinary network.
//
//   node --test --test-concurrency=1 tests/e2e/ice-tcp.test.mjs
//
// Needs root, `ip` (iproute2) and `nft` (nftables): tests/e2e/setup installs
// them; without them the test is skipped with a note. The namespace and its
// veth pair are named `ittcp…`; the server listens on the host's end of the
// pair, which both browsers reach. TURN is off, so the only way in for the
// namespace's Chromium is TCP to the media port.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS, assertReceiving, chromiumIn, eventually, have, namespace, newPage, outcome, startServer } from './harness.mjs';

const id = process.pid % 10000;
const netns = `ittcp${id}`;
const octet = (process.pid % 200) + 20;
const hostIp = `10.249.${octet}.1`;
const nsIp = `10.249.${octet}.2`;

const skip = process.getuid?.() !== 0 || !have('ip') || !have('nft')
  ? 'needs root, ip and nft (tests/e2e/setup installs them)'
  : false;

let server;
let plain;
let confined;
let dir;
/** The namespace, once made. */
let ns;

before(async () => {
  if (skip) return;
  ns = namespace({ name: netns, hostIp, nsIp });
  // Every UDP packet in or out of the namespace is dropped: no direct UDP,
  // no STUN, no TURN over UDP.
  ns.exec(['nft', '-f', '-'], `
table inet ittcp {
  chain output { type filter hook output priority 0; policy accept; meta l4proto udp drop; }
  chain input { type filter hook input priority 0; policy accept; meta l4proto udp drop; }
}
`);

  server = await startServer(['--turn', 'false', '--app-routes', 'true'], { host: hostIp });
  // Pages on http://10.x are not a secure context: let them have a camera.
  const flags = [...CHROMIUM_FLAGS, `--unsafely-treat-insecure-origin-as-secure=${server.url}`];
  dir = mkdtempSync(path.join(os.tmpdir(), 'salon-e2e-icetcp-'));
  const wrapper = chromiumIn(netns, dir);
  plain = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: flags });
  confined = await chromium.launch({ executablePath: wrapper, headless: true, args: flags });
});

after(async () => {
  await confined?.close();
  await plain?.close();
  await server?.stop();
  ns?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (process.env.SALON_E2E_SERVER_LOG && server) console.log(server.log.join(''));
});

async function sdkPage(browser, identity) {
  const page = await newPage(browser, server);
  page.identity = identity;
  await page.goto(`${server.url}/e2e/blank.html`);
  await page.evaluate(async () => {
    window.Video = await import('/sdk/salon-video.js');
  });
  return page;
}

const join = (page, room) => server.token(page.identity, room).then((token) => outcome(page, async ({ token, room }) => {
  window.room = await window.Video.connect(token, { name: room, audio: true, video: { width: 320 } });
  return window.room.sid;
}, { token, room }));

/** The selected candidate pair's two ends: type and transport of each. */
const selectedPair = (page) => page.evaluate(async () => {
  for (const pc of window.__e2e.pcs) {
    if (pc.connectionState === 'closed') continue;
    const stats = [...(await pc.getStats()).values()];
    const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
    const pair = stats.find((s) => s.id === transport?.selectedCandidatePairId);
    const local = stats.find((s) => s.id === pair?.localCandidateId);
    const remote = stats.find((s) => s.id === pair?.remoteCandidateId);
    if (local && remote) {
      return {
        local: { candidateType: local.candidateType, protocol: local.protocol },
        remote: { candidateType: remote.candidateType, protocol: remote.protocol, port: remote.port },
      };
    }
  }
  return null;
});

describe('ICE over TCP in Chromium', { skip }, () => {
  test('a participant whose network drops UDP joins over ICE-TCP without TURN and exchanges media', async () => {
    const room = 'e2e-ice-tcp';
    // The namespace really has no UDP: sending a datagram from inside it
    // fails (the rule drops it on the way out).
    const udpBlocked = (() => {
      try {
        ns.exec(['bash', '-c', `echo x > /dev/udp/${hostIp}/9`]);
        return false;
      } catch {
        return true;
      }
    })();
    assert.ok(udpBlocked, 'UDP out of the namespace is refused');

    const direct = await sdkPage(plain, 'direct');
    const tcp = await sdkPage(confined, 'tcp-only');
    assert.equal((await join(direct, room)).ok, true);
    const joined = await join(tcp, room);
    assert.equal(joined.ok, true, JSON.stringify(joined));
    await Promise.all([
      assertReceiving(tcp, { videos: 1, audios: 1 }),
      assertReceiving(direct, { videos: 1, audios: 1 }),
    ]);
    const pair = await eventually(() => selectedPair(tcp), 'a selected candidate pair');
    // The server's end: its passive TCP host candidate on the media port.
    assert.equal(pair.remote.candidateType, 'host', JSON.stringify(pair));
    assert.equal(pair.remote.protocol, 'tcp', JSON.stringify(pair));
    // Chromium's end: its active TCP host candidate, advertised with the
    // discard port 9 (RFC 6544 §4.5), becomes peer-reflexive once the
    // server's binding response names the connection's real port. Either
    // way not relayed, not server-reflexive: no TURN, no STUN server.
    assert.equal(pair.local.protocol, 'tcp', JSON.stringify(pair));
    assert.ok(['host', 'prflx'].includes(pair.local.candidateType), JSON.stringify(pair));
    const directPair = await selectedPair(direct);
    assert.equal(directPair.local.protocol, 'udp', `the other participant stays on UDP: ${JSON.stringify(directPair)}`);
    for (const page of [tcp, direct]) {
      await page.evaluate(() => window.room.disconnect());
      await page.close();
    }
  });
});
