// Video processors (twilio-video's VideoProcessor interface): what a
// processor draws is what the page shows and what the others receive, from
// the moment it is added until it is removed; @twilio/video-processors'
// background blur runs on Salon's tracks.
//
//   node --test tests/e2e/processors.test.mjs      (needs target/debug/salon; see DEVELOPERS.md)

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertReceiving, eventually, here, launchBrowser, newPage, outcome, sdkPage, startServer } from './harness.mjs';

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

/** In the page: the mean colour of the middle of what `element` shows now, as [r, g, b]. */
function installPixel(page) {
  return page.evaluate(() => {
    window.pixel = (element) => {
      const canvas = document.createElement('canvas');
      canvas.width = 32;
      canvas.height = 24;
      const context = canvas.getContext('2d', { willReadFrequently: true });
      context.drawImage(element, 0, 0, 32, 24);
      const { data } = context.getImageData(12, 8, 8, 8);
      const mean = [0, 1, 2].map((c) => {
        let sum = 0;
        for (let i = c; i < data.length; i += 4) sum += data[i];
        return Math.round(sum / (data.length / 4));
      });
      return mean;
    };
  });
}

const isMagenta = ([r, g, b]) => r > 180 && g < 90 && b > 180;
const isCyan = ([r, g, b]) => r < 90 && g > 180 && b > 180;

describe('a VideoProcessor', () => {
  test('changes what the page shows and what the others receive, added before or after publishing, until removed; on a remote track too', async () => {
    const room = 'e2e-processor';
    const publisher = await sdkPage(browser, server, 'painter');
    const viewer = await sdkPage(browser, server, 'viewer');
    for (const page of [publisher, viewer]) await installPixel(page);
    await viewer.evaluate(async ({ token, room }) => {
      window.room = await window.Video.connect(token, { name: room, tracks: [] });
      window.room.on('trackSubscribed', (track) => {
        if (track.kind === 'video') window.remote = document.body.appendChild(track.attach());
      });
    }, { token: await server.token('viewer', room), room });

    // A processor of the app's own, as in twilio-video's docs: draw the
    // input, then paint over it.
    await publisher.evaluate(async ({ token, room }) => {
      window.Painter = class {
        constructor(colour) { this.colour = colour; this.frames = 0; }
        processFrame(input, output) {
          const context = output.getContext('2d');
          context.drawImage(input, 0, 0, output.width, output.height);
          context.fillStyle = this.colour;
          context.fillRect(0, 0, output.width, output.height);
          this.frames += 1;
        }
      };
      window.camera = await window.Video.createLocalVideoTrack({ width: 320 });
      window.magenta = new window.Painter('#ff00ff');
      window.camera.addProcessor(window.magenta);
      window.local = document.body.appendChild(window.camera.attach());
      window.room = await window.Video.connect(token, { name: room, tracks: [window.camera] });
    }, { token: await server.token('painter', room), room });

    const shown = () => publisher.evaluate(() => window.pixel(window.local));
    const received = () => viewer.evaluate(() => (window.remote && window.remote.videoWidth ? window.pixel(window.remote) : [0, 0, 0]));
    await eventually(async () => isMagenta(await shown()), 'the page to show the processed frames');
    await eventually(async () => isMagenta(await received()), 'the viewer to receive the processed frames', 15_000);
    assert.equal(await publisher.evaluate(() => window.camera.processedTrack.readyState), 'live');

    // Removed: the camera's own frames again, here and there.
    await publisher.evaluate(() => window.camera.removeProcessor(window.magenta));
    assert.deepEqual(await publisher.evaluate(() => [window.camera.processor, window.camera.processedTrack]), [null, null]);
    await eventually(async () => !isMagenta(await shown()), 'the page to show the camera again');
    await eventually(async () => !isMagenta(await received()), 'the viewer to receive the camera again');

    // Added while published, taking VideoFrames.
    await publisher.evaluate(() => window.camera.addProcessor(new window.Painter('#00ffff'), { inputFrameBufferType: 'videoframe' }));
    await eventually(async () => isCyan(await received()), 'the viewer to receive the new processor\'s frames');
    await assertReceiving(viewer, { videos: 1, audios: 0 });

    // A remote track takes a processor too: the viewer's element shows it.
    await viewer.evaluate(() => {
      const [publisher] = window.room.participants.values();
      const [publication] = publisher.videoTracks.values();
      window.Painter = class { processFrame(input, output) { const c = output.getContext('2d'); c.fillStyle = '#ff00ff'; c.fillRect(0, 0, output.width, output.height); } };
      publication.track.addProcessor(new window.Painter());
    });
    await eventually(async () => isMagenta(await received()), 'the viewer\'s element to show its own processor\'s frames');

    for (const page of [publisher, viewer]) {
      await page.evaluate(() => window.room.disconnect());
      await page.close();
    }
  });

  test('each input buffer type works; a processor from before the output buffer existed, which returns its frame, too', async () => {
    const page = await sdkPage(browser, server, 'local');
    await installPixel(page);
    const results = await page.evaluate(async () => {
      const camera = await window.Video.createLocalVideoTrack({ width: 320 });
      const element = document.body.appendChild(camera.attach());
      const results = {};
      const until = async (test) => {
        for (let i = 0; i < 100; i++) {
          if (test(window.pixel(element))) return true;
          await new Promise((r) => setTimeout(r, 50));
        }
        return window.pixel(element);
      };
      const yellow = ([r, g, b]) => r > 180 && g > 180 && b < 90;
      for (const type of ['video', 'canvas', 'offscreencanvas', 'videoframe']) {
        const seen = [];
        const processor = {
          processFrame(input, output) {
            seen.push(input.constructor.name);
            const context = output.getContext('2d');
            context.fillStyle = '#ffff00';
            context.fillRect(0, 0, output.width, output.height);
          },
        };
        camera.addProcessor(processor, { inputFrameBufferType: type });
        results[type] = { shown: await until((p) => seen.length > 0 && yellow(p)), input: seen[0] };
        camera.removeProcessor(processor);
        await until((p) => !yellow(p)); // the camera again, before the next
      }
      // twilio-video before 2.16, and Twilio's localvideofilter example:
      // processFrame(input) returns the processed frame.
      const legacy = {
        output: new OffscreenCanvas(320, 240),
        processFrame(input) {
          const context = this.output.getContext('2d');
          context.fillStyle = '#ffff00';
          context.fillRect(0, 0, 320, 240);
          return this.output;
        },
      };
      camera.addProcessor(legacy);
      results.legacy = await until(yellow);
      camera.removeProcessor(legacy);
      camera.stop();
      return results;
    });
    assert.deepEqual(results, {
      video: { shown: true, input: 'HTMLVideoElement' },
      canvas: { shown: true, input: 'HTMLCanvasElement' },
      offscreencanvas: { shown: true, input: 'OffscreenCanvas' },
      videoframe: { shown: true, input: 'VideoFrame' },
      legacy: true,
    });
    await page.close();
  });

  test('bad processors and options are refused with twilio-video\'s errors', async () => {
    const page = await sdkPage(browser, server, 'refuser');
    await page.evaluate(async () => {
      window.camera = await window.Video.createLocalVideoTrack({ width: 320 });
      window.processor = { processFrame() {} };
    });
    const cases = [
      [() => window.camera.addProcessor(null), /Received an invalid VideoProcessor from addProcessor/],
      [() => window.camera.addProcessor({}), /Received an invalid VideoProcessor from addProcessor/],
      [() => window.camera.addProcessor(window.processor, { inputFrameBufferType: 'webgl' }), /Invalid inputFrameBufferType of webgl/],
      [() => window.camera.addProcessor(window.processor, { outputFrameBufferContextType: 'nonsense' }), /Cannot get outputFrameBufferContextType: nonsense/],
      [() => window.camera.removeProcessor(window.processor), /No existing VideoProcessor detected/],
      [() => { window.camera.addProcessor(window.processor); window.camera.addProcessor(window.processor); }, /A VideoProcessor has already been added/],
      [() => window.camera.removeProcessor({ processFrame() {} }), /The provided VideoProcessor is different than the existing one/],
    ];
    for (const [fn, message] of cases) {
      const result = await outcome(page, fn);
      assert.equal(result.ok, false, `${fn}`);
      assert.match(result.message, message, `${fn}`);
    }
    await page.evaluate(() => window.camera.stop());
    await page.close();
  });
});

describe('@twilio/video-processors', () => {
  test('blurs the background of a published camera (the script-tag builds of both SDKs on one page)', async () => {
    const room = 'e2e-blur';
    const assets = path.join(here, 'node_modules/@twilio/video-processors/dist/build');
    const publisher = await newPage(browser, server);
    publisher.identity = 'blurred';
    // The processors' assets, served as an app would serve them.
    await publisher.route(`${server.url}/e2e/processors/**`, (route) => {
      const name = path.basename(new URL(route.request().url()).pathname);
      const type = name.endsWith('.wasm') ? 'application/wasm' : name.endsWith('.js') ? 'text/javascript' : 'application/octet-stream';
      route.fulfill({ contentType: type, body: readFileSync(path.join(assets, name)) });
    });
    await publisher.route(`${server.url}/e2e/blur.html`, (route) => route.fulfill({
      contentType: 'text/html',
      body: '<!doctype html><script src="/sdk/salon-video.global.js"></script><script src="/e2e/processors/twilio-video-processors.js"></script>',
    }));
    await publisher.goto(`${server.url}/e2e/blur.html`);
    const viewer = await newPage(browser, server);
    viewer.identity = 'viewer';
    await viewer.goto(`${server.url}/e2e/blank.html`);
    await viewer.evaluate(async ({ token, room }) => {
      const Video = await import('/sdk/salon-video.js');
      window.room = await Video.connect(token, { name: room, tracks: [] });
    }, { token: await server.token('viewer', room), room });

    const blur = await publisher.evaluate(async ({ token, room }) => {
      const { GaussianBlurBackgroundProcessor, isSupported } = Twilio.VideoProcessors;
      if (!isSupported) return { supported: false };
      const processor = new GaussianBlurBackgroundProcessor({ assetsPath: '/e2e/processors/', blurFilterRadius: 10 });
      await processor.loadModel();
      // Count the frames Salon's SDK hands it.
      window.frames = 0;
      const processFrame = processor.processFrame.bind(processor);
      processor.processFrame = (input, output) => {
        window.frames += 1;
        return processFrame(input, output);
      };
      const camera = await Twilio.Video.createLocalVideoTrack({ width: 320, height: 240, frameRate: 15 });
      camera.addProcessor(processor, { inputFrameBufferType: 'videoframe', outputFrameBufferContextType: 'bitmaprenderer' });
      window.element = document.body.appendChild(camera.attach());
      window.room = await Twilio.Video.connect(token, { name: room, tracks: [camera] });
      window.processor = processor;
      return { supported: true, processed: camera.processedTrack !== null, shows: window.element.srcObject.getVideoTracks()[0] === camera.processedTrack };
    }, { token: await server.token('blurred', room), room });
    assert.deepEqual(blur, { supported: true, processed: true, shows: true });
    await assertReceiving(viewer, { videos: 1, audios: 0 });
    await eventually(() => publisher.evaluate(() => window.frames >= 10), 'the blur processor to process frames');
    // What it drew is on the page: the blurred camera, not an empty canvas.
    await installPixel(publisher);
    await eventually(async () => (await publisher.evaluate(() => window.pixel(window.element))).some((c) => c > 20), 'the page to show the blurred camera');
    for (const page of [publisher, viewer]) {
      await page.evaluate(() => window.room.disconnect());
      await page.close();
    }
  });
});
