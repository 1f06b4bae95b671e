// Codec preferences end to end: what the publisher asks for with
// preferredVideoCodecs / preferredAudioCodecs is what Chromium sends (its
// outbound-rtp codec) and what the subscriber decodes (its inbound-rtp
// codec), through Salon's answer, which keeps the publisher's order.
//
//   node --test tests/e2e/codecs.test.mjs      (needs target/debug/salon; see DEVELOPERS.md)

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually, launchBrowser, rtpCodecs, sdkPage, silenceWav, sleep, startServer } from './harness.mjs';

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

/**
 * `publisher` joins `room` with `preferences`, a subscriber with the
 * defaults; returns the codecs each side's stats name once media flows.
 */
async function call(room, preferences) {
  const publisher = await sdkPage(browser, server, `${room}-publisher`);
  const subscriber = await sdkPage(browser, server, `${room}-subscriber`);
  await publisher.evaluate(async ({ token, room, preferences }) => {
    window.room = await window.Video.connect(token, { name: room, audio: true, video: { width: 320 }, ...preferences });
  }, { token: await server.token('publisher', room), room, preferences });
  await subscriber.evaluate(async ({ token, room }) => {
    window.room = await window.Video.connect(token, { name: room, tracks: [] });
  }, { token: await server.token('subscriber', room), room });
  const flowing = (list) => ['audio', 'video'].every((kind) => list.some((s) => s.kind === kind && s.mimeType && s.count > 0));
  const sent = await eventually(async () => { const s = await rtpCodecs(publisher, 'outbound-rtp'); return flowing(s) && s; }, 'the publisher to send');
  const received = await eventually(async () => { const s = await rtpCodecs(subscriber, 'inbound-rtp'); return flowing(s) && s; }, 'the subscriber to decode');
  const report = await subscriber.evaluate(async () => (await window.room.getStats())[0]);
  for (const page of [publisher, subscriber]) {
    await page.evaluate(() => window.room.disconnect());
    await page.close();
  }
  const byKind = (list) => Object.fromEntries(list.map((s) => [s.kind, s.mimeType]));
  return { sent: byKind(sent), received: byKind(received), report };
}

describe('codec preferences', () => {
  test('H.264 and PCMU when the publisher prefers them', async () => {
    const { sent, received, report } = await call('e2e-h264', { preferredVideoCodecs: ['H264'], preferredAudioCodecs: ['PCMU'] });
    assert.deepEqual(sent, { audio: 'audio/PCMU', video: 'video/H264' });
    assert.deepEqual(received, { audio: 'audio/PCMU', video: 'video/H264' });
    // twilio-video's getStats() names the codec too.
    assert.equal(report.remoteVideoTrackStats[0].codec, 'H264');
    assert.equal(report.remoteAudioTrackStats[0].codec, 'PCMU');
  });

  test('VP9 and PCMA, given as codec settings objects', async () => {
    const { sent, received } = await call('e2e-vp9', { preferredVideoCodecs: [{ codec: 'VP9' }], preferredAudioCodecs: [{ codec: 'PCMA' }, 'opus'] });
    assert.deepEqual(sent, { audio: 'audio/PCMA', video: 'video/VP9' });
    assert.deepEqual(received, { audio: 'audio/PCMA', video: 'video/VP9' });
  });

  test('VP8 and Opus by default', async () => {
    const { sent, received } = await call('e2e-default', {});
    assert.deepEqual(sent, { audio: 'audio/opus', video: 'video/VP8' });
    assert.deepEqual(received, { audio: 'audio/opus', video: 'video/VP8' });
  });

  test('Opus with DTX by default, as twilio-video: a silent microphone sends a packet in ten; dtx: false, one every 20 ms', async () => {
    // Chromium's own fake microphone beeps; a quiet room is silence.
    const quiet = await launchBrowser({ args: [`--use-file-for-fake-audio-capture=${silenceWav()}`] });
    /** What a publisher of audio only sends per second once flowing, and whether its applied answer asks for DTX. */
    const audioRate = async (room, preferences) => {
      const page = await sdkPage(quiet, server, `${room}-publisher`);
      await page.evaluate(async ({ token, room, preferences }) => {
        window.room = await window.Video.connect(token, { name: room, audio: true, video: false, ...preferences });
      }, { token: await server.token('publisher', room), room, preferences });
      const sent = async () => (await rtpCodecs(page, 'outbound-rtp')).filter((s) => s.kind === 'audio').reduce((n, s) => n + s.count, 0);
      await eventually(async () => (await sent()) > 0, `${room}: audio to flow`);
      await sleep(1_000);
      const before = await sent();
      await sleep(4_000);
      const perSecond = ((await sent()) - before) / 4;
      const usedtx = await page.evaluate(() => window.__e2e.pcs.some((pc) => /^a=fmtp:\d+ .*usedtx=1/m.test(pc.remoteDescription?.sdp ?? '')));
      await page.evaluate(() => window.room.disconnect());
      await page.close();
      return { perSecond, usedtx };
    };
    try {
      const dtx = await audioRate('e2e-dtx', {});
      const full = await audioRate('e2e-no-dtx', { preferredAudioCodecs: [{ codec: 'opus', dtx: false }] });
      console.log(`# Opus packets a second from a silent microphone: ${dtx.perSecond} with DTX, ${full.perSecond} without`);
      assert.equal(dtx.usedtx, true, 'the applied answer asks for DTX');
      assert.equal(full.usedtx, false, 'dtx: false: the applied answer does not');
      assert.ok(full.perSecond >= 40, `without DTX a packet every 20 ms: ${full.perSecond}/s`);
      assert.ok(dtx.perSecond < 15, `with DTX silence sends little: ${dtx.perSecond}/s against ${full.perSecond}/s`);
    } finally {
      await quiet.close();
    }
  });
});
