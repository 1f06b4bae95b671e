// Apps served from elsewhere, as apps written for Twilio are: an ES module
// import of Salon's SDK from another origin (CORS), the script-tag build
// and its `Twilio.Video` global, and an app bundled with esbuild whose
// `import 'twilio-video'` is aliased to salon-video, finding Salon through
// a <meta> tag, a bundler define, or its own origin.
//
//   node --test tests/e2e/apps.test.mjs      (needs target/debug/salon; see DEVELOPERS.md)

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { build } from 'esbuild';
import { assertReceiving, freePort, launchBrowser, newPage, repo, serveAt, startServer } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  APP = `http://localhost:${await freePort()}`;
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * Another origin than Salon's (http://127.0.0.1:port), as the app's own web
 * server would be: `localhost` on a port where nothing listens (the harness
 * fulfils its pages), a secure context as localhost is, so the camera works.
 */
let APP;

/**
 * An app as Twilio's tutorials write it: `twilio-video` is imported (or
 * required, or the global), a token comes from the app's server, and
 * connect() gets no `url`: where Salon is, is configuration.
 */
const APP_SOURCE = `
  const Video = require('twilio-video');
  window.app = { events: [] };
  window.join = async (token, name) => {
    const room = await Video.connect(token, { name, audio: true, video: { width: 320 } });
    window.app.room = room;
    room.on('trackSubscribed', (track, publication, participant) => {
      window.app.events.push('trackSubscribed ' + participant.identity + ' ' + track.kind);
      if (track.kind !== 'data') document.body.appendChild(track.attach());
    });
    return room.name;
  };
`;

/** Bundle APP_SOURCE for the browser with 'twilio-video' → salon-video. */
async function bundle(options = {}) {
  const result = await build({
    stdin: { contents: APP_SOURCE, resolveDir: repo, loader: 'js' },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    write: false,
    alias: { 'twilio-video': path.join(repo, 'sdk/js/salon-video.js') },
    logLevel: 'silent',
    ...options,
  });
  return result.outputFiles[0].text;
}

const html = (head, body = '') => `<!doctype html><html><head><meta charset="utf-8">${head}</head><body>${body}</body></html>`;

/** Open `files` served at `origin` (`/` first), join `room`, and check that media flows both ways with a participant on Salon's own origin. */
async function joinFromApp(origin, files, room) {
  const other = await newPage(browser, server);
  other.identity = `${room}-other`;
  await other.goto(`${server.url}/e2e/blank.html`);
  await other.evaluate(async ({ token, room }) => {
    const Video = await import('/sdk/salon-video.js');
    window.room = await Video.connect(token, { name: room, audio: true, video: { width: 320 } });
  }, { token: await server.token(other.identity, room), room });

  const page = await newPage(browser, server);
  page.identity = `${room}-app`;
  await serveAt(page, origin, files);
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => typeof window.join === 'function');
  const name = await page.evaluate(({ token, room }) => window.join(token, room), { token: await server.token(page.identity, room), room });
  assert.equal(name, room);
  await assertReceiving(page, { videos: 1, audios: 1 });
  await assertReceiving(other, { videos: 1, audios: 1 });
  assert.deepEqual(page.errors, []);
  for (const p of [page, other]) {
    await p.evaluate(() => (window.app ? window.app.room : window.room).disconnect());
    await p.close();
  }
}

describe('an app on another origin', () => {
  test('imports the SDK from Salon as an ES module (CORS), and connects to where it came from', async () => {
    await joinFromApp(APP, {
      '/': {
        type: 'text/html',
        body: html('', `<script type="module">
          import * as Video from '${server.url}/sdk/salon-video.js';
          window.app = { events: [] };
          window.join = async (token, name) => {
            window.app.room = await Video.connect(token, { name, audio: true, video: { width: 320 } });
            window.app.room.on('trackSubscribed', (track) => track.kind !== 'data' && document.body.appendChild(track.attach()));
            return window.app.room.name;
          };
        </script>`),
      },
    }, 'e2e-cors');
  });

  test('loads the script-tag build: Twilio.Video, connecting to where it came from', async () => {
    await joinFromApp(APP, {
      '/': {
        type: 'text/html',
        // Another Twilio SDK's global of the same name is kept.
        body: html(`<script>window.Twilio = { Conversations: 'kept' };</script><script src="${server.url}/sdk/salon-video.global.js"></script>`, `<script>
          window.app = { events: [] };
          window.join = async (token, name) => {
            if (Twilio.Conversations !== 'kept') throw new Error('the Twilio global was replaced');
            if (!Twilio.Video.isSupported || typeof Twilio.Video.Logger.getLogger !== 'function') throw new Error('incomplete global');
            window.app.room = await Twilio.Video.connect(token, { name, audio: true, video: { width: 320 } });
            window.app.room.on('trackSubscribed', (track) => track.kind !== 'data' && document.body.appendChild(track.attach()));
            return window.app.room.name;
          };
        </script>`),
      },
    }, 'e2e-global');
  });

  test('bundles "twilio-video" aliased to salon-video, finding Salon from a <meta> tag', async () => {
    await joinFromApp(APP, {
      '/': { type: 'text/html', body: html(`<meta name="salon-video-url" content="${server.url}"><script src="/app.js"></script>`) },
      '/app.js': { type: 'text/javascript', body: await bundle() },
    }, 'e2e-meta');
  });

  test('bundles "twilio-video" aliased to salon-video, finding Salon from a bundler define', async () => {
    await joinFromApp(APP, {
      '/': { type: 'text/html', body: html('<script src="/app.js"></script>') },
      '/app.js': { type: 'text/javascript', body: await bundle({ define: { SALON_VIDEO_URL: JSON.stringify(server.url) } }) },
    }, 'e2e-define');
  });
});

describe('an app bundled with no word of where Salon is', () => {
  test('served by Salon\'s own origin, finds Salon there', async () => {
    // Served at /e2e/… on Salon's origin (the harness fulfils those): the
    // bundle has no import.meta.url to go by, the page's origin is Salon.
    const page = await newPage(browser, server);
    page.identity = 'same-origin';
    const script = await bundle();
    await page.route(`${server.url}/e2e/app.js`, (route) => route.fulfill({ contentType: 'text/javascript', body: script }));
    await page.route(`${server.url}/e2e/app.html`, (route) => route.fulfill({ contentType: 'text/html', body: html('<script src="/e2e/app.js"></script>') }));
    await page.goto(`${server.url}/e2e/app.html`);
    const name = await page.evaluate((token) => window.join(token, 'e2e-same-origin'), await server.token('same-origin', 'e2e-same-origin'));
    assert.equal(name, 'e2e-same-origin');
    await page.evaluate(() => window.app.room.disconnect());
    await page.close();
  });

  test('served from another origin, tries that origin and fails with 53000', async () => {
    const page = await newPage(browser, server);
    await serveAt(page, APP, {
      '/': { type: 'text/html', body: html('<script src="/app.js"></script>') },
      '/app.js': { type: 'text/javascript', body: await bundle() },
    });
    await page.goto(`${APP}/`);
    // The page's origin is not Salon (nothing listens there): the join
    // fails with Twilio's signaling error.
    const result = await page.evaluate(async (token) => {
      try {
        await window.join(token, 'e2e-nowhere');
        return 'connected';
      } catch (e) {
        return { code: e.code, message: e.message };
      }
    }, await server.token('lost', 'e2e-nowhere'));
    assert.equal(result.code, 53000);
    assert.match(result.message, /came from the page's origin\. Pass options\.url, or set <meta name="salon-video-url"/);
    await page.close();
  });
});
