// runPreflight(): twilio-video's connection test, against Salon. The same
// events in the same order and a report of the same shape, measuring the
// way to Salon's media server; failures and stop() as twilio-video has them.
//
//   node --test tests/e2e/preflight.test.mjs      (needs target/debug/salon; see DEVELOPERS.md)

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually, launchBrowser, leftovers, sdkPage, startServer } from './harness.mjs';

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

/** In the page: run a preflight test and gather its events until it completes or fails. */
function preflight(page, token, options, { stopAfter } = {}) {
  return page.evaluate(({ token, options, stopAfter }) => new Promise((resolve) => {
    const test = window.Video.runPreflight(token, options);
    const progress = [];
    test.on('progress', (name) => {
      progress.push(name);
      if (name === stopAfter) test.stop();
    });
    test.on('completed', (report) => resolve({ outcome: 'completed', progress, report }));
    test.on('failed', (error, report) => resolve({ outcome: 'failed', error: { message: error.message, code: error.code ?? null }, progress, report }));
  }), { token, options, stopAfter });
}

const isTiming = (t) => typeof t.start === 'number' && typeof t.end === 'number' && t.duration === t.end - t.start && t.duration >= 0;
const isStat = (s) => s !== null && ['min', 'max', 'average'].every((k) => typeof s[k] === 'number') && s.min <= s.average && s.average <= s.max;

describe('runPreflight()', () => {
  test('reports progress in twilio-video\'s order, then a report of its shape', async () => {
    const page = await sdkPage(browser, server, 'preflight');
    const { outcome, progress, report } = await preflight(page, await server.token('preflight'), { duration: 2000 });
    assert.equal(outcome, 'completed');
    assert.deepEqual(progress, ['mediaAcquired', 'connected', 'iceConnected', 'dtlsConnected', 'peerConnectionConnected', 'mediaSubscribed', 'mediaStarted']);
    assert.deepEqual(report.progressEvents.map((e) => e.name), progress);
    assert.ok(report.progressEvents.every((e, i, all) => e.duration >= (all[i - 1]?.duration ?? 0)), 'progress times only grow');
    assert.deepEqual(Object.keys(report).sort(), ['iceCandidateStats', 'networkTiming', 'progressEvents', 'selectedIceCandidatePairStats', 'stats', 'testTiming']);
    assert.ok(isTiming(report.testTiming) && report.testTiming.duration >= 2000, JSON.stringify(report.testTiming));
    for (const step of ['connect', 'ice', 'dtls', 'peerConnection', 'media']) {
      assert.ok(isTiming(report.networkTiming[step]), `${step}: ${JSON.stringify(report.networkTiming[step])}`);
    }
    assert.ok(isStat(report.stats.rtt) && isStat(report.stats.jitter) && isStat(report.stats.packetLoss), JSON.stringify(report.stats));
    assert.ok(report.stats.packetLoss.max < 5, 'no loss on loopback');
    const { localCandidate, remoteCandidate } = report.selectedIceCandidatePairStats;
    assert.equal(remoteCandidate.address, '127.0.0.1', 'the pair ends at Salon\'s media port');
    assert.equal(localCandidate.protocol, 'udp');
    assert.ok(report.iceCandidateStats.some((c) => c.candidateType === 'host' && typeof c.port === 'number'));
    // Nothing is left running; the test's room is empty again.
    assert.equal((await leftovers(page)).openPeerConnections, 0);
    await page.close();
  });

  test('fails with the server\'s code for a bad token, and with "stopped" when stopped', async () => {
    const page = await sdkPage(browser, server, 'doomed');
    const refused = await preflight(page, 'not-a-token', { duration: 1000 });
    assert.equal(refused.outcome, 'failed');
    assert.equal(refused.error.code, 20101);
    assert.deepEqual(refused.progress, ['mediaAcquired']);
    assert.deepEqual(refused.report.stats, { jitter: null, rtt: null, packetLoss: null });
    assert.equal(refused.report.selectedIceCandidatePairStats, null);

    const stopped = await preflight(page, await server.token('doomed'), { duration: 5000 }, { stopAfter: 'connected' });
    assert.equal(stopped.outcome, 'failed');
    assert.equal(stopped.error.message, 'stopped');
    await eventually(async () => (await leftovers(page)).openPeerConnections === 0, 'the stopped test to close its peer connection');
    await page.close();
  });
});
