// The demo app publishes the camera and microphone however fast Join is
// clicked. It used to join with whatever tracks the preview had produced
// by then: clicked before getUserMedia resolved, its only offer published
// nothing, and nobody ever saw or heard that person.
//
//   node --test tests/e2e/demo.test.mjs      (needs target/debug/salon; see DEVELOPERS.md)

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually, launchBrowser, newPage, startServer } from './harness.mjs';

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

/** What the server says `identity` publishes in `room` (REST PublishedTracks). */
async function published(room, identity) {
  const participant = await server.rest('GET', `/v1/Rooms/${room}/Participants/${identity}`);
  if (participant.status !== 200) return [];
  const tracks = await server.rest('GET', `/v1/Rooms/${participant.body.room_sid}/Participants/${participant.body.sid}/PublishedTracks`);
  return tracks.body.published_tracks.map((t) => t.kind).sort();
}

/**
 * Open the demo with `room` and `name` in the URL and click Join as soon as
 * the button is there, then ask the server what the participant publishes.
 */
async function joinAtOnce(page, room, name) {
  await page.goto(`${server.url}/?room=${room}&name=${name}`);
  await page.click('#join-button');
  await eventually(() => page.evaluate(() => Boolean(window.salonDemo.room)), `${name} to join`);
  const identity = name;
  const kinds = await eventually(async () => {
    const k = await published(room, identity);
    return k.length === 2 && k;
  }, `${name} to publish a camera and a microphone`, 15_000).catch(async (e) => {
    throw new Error(`${e.message}: the server has ${JSON.stringify(await published(room, identity))}`);
  });
  assert.deepEqual(kinds, ['audio', 'video']);
  await page.click('#leave-button');
  await eventually(() => page.evaluate(() => !window.salonDemo.room), `${name} to leave`);
}

describe('the demo app, joined at once', () => {
  test('publishes its camera and microphone when Join beats getUserMedia (a slow camera, 8 times)', async () => {
    const page = await newPage(browser, server);
    // getUserMedia answers late, as with a permission prompt or a slow camera.
    await page.addInitScript(() => {
      const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = async (constraints) => {
        await new Promise((r) => setTimeout(r, 600));
        return gum(constraints);
      };
    });
    for (let i = 0; i < 8; i++) await joinAtOnce(page, 'e2e-slow-camera', `slow${i}`);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('publishes its camera and microphone when Join is clicked as the page loads (4 times)', async () => {
    const page = await newPage(browser, server);
    for (let i = 0; i < 4; i++) await joinAtOnce(page, 'e2e-fast-click', `fast${i}`);
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});
