// twilio-video's API, as apps written for it use it, on Salon's SDK: the
// logger, Node's EventEmitter methods, connect() without a room name, the
// order of trackPublished, rooms of data tracks only, priorities.
//
//   node --test tests/e2e/api.test.mjs      (needs target/debug/salon; see DEVELOPERS.md)

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually, launchBrowser, outcome, sdkPage, startServer } from './harness.mjs';

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

describe('Video.Logger', () => {
  test('is loglevel: named loggers, levels (persisted), methodFactory, and the SDK logs through it', async () => {
    const page = await sdkPage(browser, server, 'logger');
    const token = await server.token('logger');
    const seen = await page.evaluate(async (token) => {
      const { Logger } = window.Video;
      const logger = Logger.getLogger('twilio-video');
      const result = {
        same: Logger.getLogger('twilio-video') === logger,
        defaultLevel: logger.getLevel(),
        levels: logger.levels,
        badLevel: (() => {
          try {
            logger.setLevel('loud');
            return 'accepted';
          } catch (e) {
            return e.constructor.name;
          }
        })(),
        badName: (() => {
          try {
            Logger.getLogger('');
            return 'accepted';
          } catch (e) {
            return e.constructor.name;
          }
        })(),
      };
      // An app's own formatting, as in twilio-video's docs.
      const lines = [];
      const original = logger.methodFactory;
      logger.methodFactory = (methodName, level, loggerName) => {
        const method = original(methodName, level, loggerName);
        return (time, levelName, component, ...message) => {
          lines.push({ methodName, loggerName, time, levelName, component, message: message.map(String).join(' ') });
          method(time, levelName, component, ...message);
        };
      };
      logger.setLevel('debug');
      result.persisted = localStorage.getItem('loglevel:twilio-video');
      const room = await window.Video.connect(token, { tracks: [] });
      await new Promise((resolve) => setTimeout(resolve, 500)); // the first offer and its answer
      room.disconnect();
      result.lines = lines;
      // Silent: nothing more reaches the factory's methods.
      logger.setLevel('silent', false);
      const before = lines.length;
      const again = await window.Video.connect(token, { tracks: [] });
      again.disconnect();
      result.silentLines = lines.length - before;
      result.otherLogger = Logger.getLogger('my-app').getLevel();
      return result;
    }, token);
    assert.equal(seen.same, true);
    assert.equal(seen.defaultLevel, 3, 'twilio-video logs warnings and errors by default');
    assert.deepEqual(seen.levels, { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, SILENT: 5 });
    assert.equal(seen.badLevel, 'TypeError');
    assert.equal(seen.badName, 'TypeError');
    assert.equal(seen.persisted, 'DEBUG', 'setLevel persists in localStorage, as loglevel does');
    const joined = seen.lines.find((l) => /Joined room/.test(l.message));
    assert.ok(joined, `the SDK logged its join through the factory: ${JSON.stringify(seen.lines.slice(0, 5))}`);
    assert.equal(joined.loggerName, 'twilio-video');
    assert.equal(joined.levelName, 'info');
    assert.match(joined.time, /^\d{4}-\d\d-\d\dT/);
    assert.ok(seen.lines.some((l) => l.levelName === 'debug' && /Offer 1/.test(l.message)), 'debug lines too');
    assert.equal(seen.silentLines, 0);
    assert.equal(seen.otherLogger, 3, 'a new logger takes the root level');
    await page.close();
  });
});

describe('Node\'s EventEmitter', () => {
  test('every object has its methods, with Node\'s semantics', async () => {
    const page = await sdkPage(browser, server, 'emitter');
    const token = await server.token('emitter');
    const seen = await page.evaluate(async (token) => {
      const room = await window.Video.connect(token, { tracks: [] });
      const order = [];
      const a = () => order.push('a');
      const b = () => order.push('b');
      const once = () => order.push('once');
      const result = {};
      result.chain = room.setMaxListeners(16) === room;
      result.max = room.getMaxListeners();
      room.on('custom', a);
      room.prependListener('custom', b);
      room.prependOnceListener('custom', once);
      result.count = room.listenerCount('custom');
      result.countOf = room.listenerCount('custom', once);
      result.raw = room.rawListeners('custom').map((l) => l === once ? 'once' : l.listener === once ? 'wrapped once' : l.name);
      result.plain = room.listeners('custom').map((l) => (l === once ? 'once' : l.name));
      room.emit('custom');
      room.emit('custom');
      result.order = order;
      result.names = room.eventNames().includes('custom');
      const removals = [];
      room.on('removeListener', (event) => removals.push(event));
      room.removeAllListeners('custom');
      result.removals = [...removals];
      result.afterRemoval = room.listenerCount('custom');
      // An unhandled 'error' event is thrown, as in Node.
      try {
        room.emit('error', new Error('boom'));
        result.error = 'not thrown';
      } catch (e) {
        result.error = e.message;
      }
      // A listener that throws does not stop the others.
      const after = [];
      room.on('x', () => { throw new Error('app bug'); });
      room.on('x', () => after.push('second'));
      window.addEventListener('error', (e) => e.preventDefault(), { once: true });
      room.emit('x');
      result.afterThrow = after;
      // More than getMaxListeners() is warned about once, through the logger.
      const warnings = [];
      const logger = window.Video.Logger.getLogger('twilio-video');
      logger.methodFactory = (name) => (...args) => name === 'warn' && warnings.push(args.join(' '));
      logger.setLevel('warn', false);
      const track = new window.Video.LocalDataTrack();
      for (let i = 0; i < 12; i++) track.on('tick', () => {});
      result.warnings = warnings.filter((w) => /MaxListenersExceededWarning/.test(w)).length;
      result.badMax = (() => { try { room.setMaxListeners(-1); return 'accepted'; } catch (e) { return e.constructor.name; } })();
      room.disconnect();
      return result;
    }, token);
    assert.deepEqual(seen, {
      chain: true,
      max: 16,
      count: 3,
      countOf: 1,
      raw: ['wrapped once', 'b', 'a'],
      plain: ['once', 'b', 'a'],
      order: ['once', 'b', 'a', 'b', 'a'],
      names: true,
      removals: ['custom', 'custom'],
      afterRemoval: 0,
      error: 'boom',
      afterThrow: ['second'],
      warnings: 1,
      badMax: 'RangeError',
    });
    await page.close();
  });
});

describe('connect()', () => {
  test('without a name and a room grant: a new room named by its SID, which others join by that name', async () => {
    const first = await sdkPage(browser, server, 'first');
    const second = await sdkPage(browser, server, 'second');
    const room = await first.evaluate(async (token) => {
      window.room = await window.Video.connect(token, { tracks: [] });
      return { sid: window.room.sid, name: window.room.name };
    }, await server.token('first'));
    assert.match(room.sid, /^RM[0-9a-f]{32}$/);
    assert.equal(room.name, room.sid);
    const joined = await second.evaluate(async ({ token, name }) => {
      window.room = await window.Video.connect(token, { name, tracks: [] });
      return { sid: window.room.sid, others: [...window.room.participants.values()].map((p) => p.identity) };
    }, { token: await server.token('second'), name: room.name });
    assert.deepEqual(joined, { sid: room.sid, others: ['first'] });
    // With a room grant and no name: the granted room.
    const granted = await outcome(second, async (token) => (await window.Video.connect(token, { tracks: [] })).name, await server.token('third', 'e2e-granted'));
    assert.deepEqual(granted, { ok: true, value: 'e2e-granted' });
    for (const page of [first, second]) {
      await page.evaluate(() => window.room.disconnect());
      await page.close();
    }
  });

  test('trackPublished for the tracks given to connect() comes after connect() resolves', async () => {
    const page = await sdkPage(browser, server, 'publisher');
    const seen = await page.evaluate(async (token) => {
      const order = [];
      const tracks = await window.Video.createLocalTracks({ audio: true, video: { width: 320 } });
      const data = new window.Video.LocalDataTrack({ name: 'chat' });
      const room = await window.Video.connect(token, { name: 'e2e-order', tracks: [...tracks, data] });
      order.push(`resolved with ${room.localParticipant.tracks.size} publications`);
      // As apps do: the listener goes on right after `await connect()`.
      room.localParticipant.on('trackPublished', (publication) => order.push(`trackPublished ${publication.kind}`));
      await new Promise((resolve) => setTimeout(resolve, 200));
      room.disconnect();
      tracks.forEach((t) => t.stop());
      return order;
    }, await server.token('publisher'));
    assert.deepEqual(seen, ['resolved with 3 publications', 'trackPublished audio', 'trackPublished video', 'trackPublished data']);
    await page.close();
  });

  test("the tracks already in the room are subscribed after connect() resolves, each with trackSubscribed", async () => {
    const first = await sdkPage(browser, server, 'already-there');
    await first.evaluate(async (token) => {
      const data = new window.Video.LocalDataTrack({ name: 'chat' });
      window.room = await window.Video.connect(token, { name: 'e2e-subscribe-order', audio: true, video: { width: 320 } });
      await window.room.localParticipant.publishTrack(data);
    }, await server.token('already-there'));
    const joiner = await sdkPage(browser, server, 'joiner');
    const seen = await joiner.evaluate(async (token) => {
      const order = [];
      const room = await window.Video.connect(token, { name: 'e2e-subscribe-order', audio: true, video: { width: 320 } });
      const [them] = [...room.participants.values()];
      order.push(`resolved: ${them.identity} with ${them.tracks.size} publications, ${[...them.tracks.values()].filter((p) => p.isSubscribed).length} subscribed`);
      // As apps do: the listener goes on right after `await connect()`.
      room.on('trackSubscribed', (track, publication, participant) => order.push(`trackSubscribed ${track.kind} of ${participant.identity}`));
      const started = Date.now();
      while (order.length < 4 && Date.now() - started < 10_000) await new Promise((resolve) => setTimeout(resolve, 50));
      room.disconnect();
      return order;
    }, await server.token('joiner'));
    assert.equal(seen[0], 'resolved: already-there with 3 publications, 0 subscribed');
    assert.deepEqual(seen.slice(1).sort(), ['trackSubscribed audio of already-there', 'trackSubscribed data of already-there', 'trackSubscribed video of already-there']);
    await first.evaluate(() => window.room.disconnect());
    await first.close();
    await joiner.close();
  });

  test('a participant that publishes only a data track is connected: its messages arrive', async () => {
    // twilio/video-quickstart-js's data track example: two participants,
    // each with only a LocalDataTrack, no camera, no microphone.
    const room = 'e2e-data-only';
    const pages = [];
    for (const identity of ['p1', 'p2']) {
      const page = await sdkPage(browser, server, identity);
      await page.evaluate(async ({ token, room }) => {
        window.chat = new window.Video.LocalDataTrack({ name: 'chat' });
        window.room = await window.Video.connect(token, { name: room, tracks: [window.chat] });
        window.heard = [];
        window.room.on('trackMessage', (data, track, participant) => window.heard.push(`${participant.identity}: ${data}`));
      }, { token: await server.token(identity), room });
      pages.push(page);
    }
    const [p1, p2] = pages;
    await eventually(async () => {
      await p1.evaluate(() => window.chat.send('hello from p1'));
      await p2.evaluate(() => window.chat.send('hello from p2'));
      const [at1, at2] = await Promise.all([p1.evaluate(() => window.heard), p2.evaluate(() => window.heard)]);
      return at1.includes('p2: hello from p2') && at2.includes('p1: hello from p1');
    }, 'each data-only participant to hear the other');
    const media = await p1.evaluate(() => window.__e2e.pcs.map((pc) => pc.connectionState));
    assert.deepEqual(media, ['connected'], 'one peer connection, connected, with only a data channel on it');
    for (const page of pages) {
      await page.evaluate(() => window.room.disconnect());
      await page.close();
    }
  });

  test('accepts twilio-video\'s options, checks them, and says no to bad ones', async () => {
    const page = await sdkPage(browser, server, 'options');
    const token = await server.token('options');
    const good = await outcome(page, async (token) => {
      const room = await window.Video.connect(token, {
        name: 'e2e-options',
        tracks: [],
        bandwidthProfile: { video: { mode: 'collaboration', dominantSpeakerPriority: 'high', clientTrackSwitchOffControl: 'auto', contentPreferencesMode: 'auto', maxSubscriptionBitrate: 2500000 } },
        dominantSpeaker: true,
        networkQuality: { local: 1, remote: 2 },
        preferredVideoCodecs: [{ codec: 'VP8', simulcast: true }],
        preferredAudioCodecs: [{ codec: 'opus', dtx: false }],
        logLevel: 'warn',
        region: 'gll',
        insights: false,
        enableDscp: true,
        notifyWarnings: ['recording-media-lost'],
      });
      const data = new window.Video.LocalDataTrack();
      const publication = await room.localParticipant.publishTrack(data, { priority: 'high' });
      publication.setPriority('low');
      room.localParticipant.setNetworkQualityConfiguration({ local: 2, remote: 1 });
      const result = { priority: publication.priority, isRecording: room.isRecording, dominantSpeaker: room.dominantSpeaker };
      room.disconnect();
      return result;
    }, token);
    assert.deepEqual(good, { ok: true, value: { priority: 'low', isRecording: false, dominantSpeaker: null } });
    const cases = [
      [(t) => window.Video.connect(t, { bandwidthProfile: { video: { mode: 'theatre' } } }), 'RangeError', /mode must be one of grid, collaboration, presentation/],
      [(t) => window.Video.connect(t, { networkQuality: { local: 7 } }), 'RangeError', /networkQuality.local/],
      [(t) => window.Video.connect(t, { preferredAudioCodecs: ['G729'] }), 'RangeError', /must be one of opus, PCMU, PCMA, isac/],
      [(t) => window.Video.connect(t, { logLevel: 'loud' }), 'RangeError', /logLevel/],
      [async (t) => {
        const room = await window.Video.connect(t, { name: 'e2e-options', tracks: [] });
        try {
          await room.localParticipant.publishTrack(new window.Video.LocalDataTrack(), { priority: 'urgent' });
        } finally {
          room.disconnect();
        }
      }, 'RangeError', /priority must be one of low, standard, high/],
    ];
    for (const [fn, ctor, message] of cases) {
      const result = await outcome(page, fn, token);
      assert.equal(result.ctor, ctor, `${fn}: ${JSON.stringify(result)}`);
      assert.match(result.message, message);
    }
    await page.close();
  });
});
