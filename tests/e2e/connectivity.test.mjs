// Connectivity in real Chromium: a participant that may only use relayed
// candidates (`iceTransportPolicy: 'relay'`) joins through Salon's built-in
// TURN server, over UDP, then TCP, then TLS, and exchanges audio and video
// with a participant connected directly.
//
//   node --test --test-concurrency=1 tests/e2e/connectivity.test.mjs
//
// The TLS certificate is a throwaway self-signed one made with openssl;
// Chromium is told to ignore certificate errors for it.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS, assertReceiving, eventually, newPage, outcome, startServer } from './harness.mjs';

let server;
let browser;
let certDir;

before(async () => {
  certDir = mkdtempSync(path.join(os.tmpdir(), 'salon-e2e-turn-'));
  const cert = path.join(certDir, 'cert.pem');
  const key = path.join(certDir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
  ], { stdio: 'ignore' });
  server = await startServer([
    '--turn-tls-port', '0', '--turn-tls-cert', cert, '--turn-tls-key', key, '--turn-tls-host', 'localhost',
  ]);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_FLAGS, '--ignore-certificate-errors'],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
  if (process.env.SALON_E2E_SERVER_LOG) console.log(server.log.join(''));
});

/**
 * A page with the SDK whose peer connections keep only the ICE server URLs
 * that `keep` matches (so one TURN transport is tried at a time).
 */
async function sdkPageKeeping(identity, keep) {
  const page = await newPage(browser, server);
  page.identity = identity;
  await page.goto(`${server.url}/e2e/blank.html`);
  await page.evaluate(async (keep) => {
    const Native = window.RTCPeerConnection;
    window.RTCPeerConnection = function (config = {}) {
      const servers = (config.iceServers || [])
        .map((s) => ({ ...s, urls: [].concat(s.urls).filter((u) => new RegExp(keep).test(u)) }))
        .filter((s) => s.urls.length);
      window.iceServersUsed = servers;
      return new Native({ ...config, iceServers: servers });
    };
    window.RTCPeerConnection.prototype = Native.prototype;
    window.Video = await import('/sdk/salon-video.js');
  }, keep);
  return page;
}

const join = (page, room, options) => server.token(page.identity, room).then((token) => outcome(page, async ({ token, room, options }) => {
  window.room = await window.Video.connect(token, { name: room, audio: true, video: { width: 320 }, ...options });
  return window.room.sid;
}, { token, room, options }));

/** The local candidate of the page's selected pair: {candidateType, relayProtocol}. */
const selectedLocal = (page) => page.evaluate(async () => {
  for (const pc of window.__e2e.pcs) {
    if (pc.connectionState === 'closed') continue;
    const stats = [...(await pc.getStats()).values()];
    const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
    const pair = stats.find((s) => s.id === transport?.selectedCandidatePairId);
    const local = stats.find((s) => s.id === pair?.localCandidateId);
    if (local) return { candidateType: local.candidateType, relayProtocol: local.relayProtocol ?? null };
  }
  return null;
});

describe('TURN in Chromium', () => {
  for (const [transport, keep] of [['udp', 'transport=udp'], ['tcp', '^turn:.*transport=tcp'], ['tls', '^turns:']]) {
    test(`a relay-only participant joins through TURN over ${transport} and exchanges media`, async () => {
      const room = `e2e-turn-${transport}`;
      const relayed = await sdkPageKeeping(`relayed-${transport}`, keep);
      const direct = await sdkPageKeeping(`direct-${transport}`, '^stun:');
      assert.equal((await join(direct, room, {})).ok, true);
      const joined = await join(relayed, room, { iceTransportPolicy: 'relay' });
      assert.equal(joined.ok, true, JSON.stringify(joined));
      const used = await relayed.evaluate(() => window.iceServersUsed);
      assert.ok(used.length === 1 && used[0].username, `one TURN server with credentials: ${JSON.stringify(used)}`);
      await Promise.all([
        assertReceiving(relayed, { videos: 1, audios: 1 }),
        assertReceiving(direct, { videos: 1, audios: 1 }),
      ]);
      const local = await eventually(() => selectedLocal(relayed), 'a selected candidate pair');
      assert.deepEqual(local, { candidateType: 'relay', relayProtocol: transport }, `the relayed page's selected candidate`);
      for (const page of [relayed, direct]) {
        await page.evaluate(() => window.room.disconnect());
        await page.close();
      }
    });
  }
});
