// Recordings, recording rules and compositions through twilio-node, pointed
// at Salon (client.video.baseUrl = SALON_URL), as an application uses them:
//
// - a group room created with recordParticipantsOnConnect, its rules read
//   and replaced with rooms(sid).recordingRules.update({rules});
// - two aiortc participants (tests/interop/python/webrtc.py: real VP8 and
//   Opus) exchange media in it; the recordings the rules ask for, and only
//   those, become `completed` (recordings.list with groupingSid, fetch,
//   rooms(sid).recordings);
// - each recording's media downloads as Twilio documents it:
//   client.request({method: 'GET', uri: links.media}) gives the 302 whose
//   body's redirect_to is a short-lived URL that needs no credentials;
// - a composition hook (compositionHooks) composes the room when it ends;
// - a composition (compositions.create) of the room becomes `completed`,
//   is listed and fetched, its media downloads the same way, and it is
//   deleted; bad requests fail with Twilio's codes (RestException).
//
// Environment: SALON_URL, SALON_ACCOUNT_SID, SALON_AUTH_TOKEN,
// SALON_API_KEY, SALON_API_SECRET.

import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

import twilio from "twilio";

import { check, checkEqual, env, expectRestError, run } from "./common.mjs";

const SALON_URL = env("SALON_URL").replace(/\/+$/, "");
const ACCOUNT_SID = env("SALON_ACCOUNT_SID");
const API_KEY = env("SALON_API_KEY");
const API_SECRET = env("SALON_API_SECRET");
env("SALON_AUTH_TOKEN");

const TWILIO_VERSION = createRequire(import.meta.url)("twilio/package.json").version;
const here = path.dirname(fileURLToPath(import.meta.url));
const VENV_PYTHON = path.join(here, "..", ".venv", "bin", "python");

const client = twilio(API_KEY, API_SECRET, { accountSid: ACCOUNT_SID });
client.video.baseUrl = SALON_URL;
const video = client.video.v1;

const RUN = `node-rec-${Date.now().toString(36)}-${process.pid}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a truthy value (at most `ms`). */
async function eventually(fn, what, ms = 60_000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    check(Date.now() < deadline, `timed out waiting for ${what}`, last);
    await sleep(250);
  }
}

/**
 * Two aiortc participants in `room` until both received the other's media;
 * then both leave. Resolves when both have exited 0.
 */
async function aiortcMeeting(room, identities) {
  const children = identities.map((identity) => {
    const child = spawn(VENV_PYTHON, [path.join(here, "..", "python", "webrtc.py")], {
      env: { ...process.env, SALON_ROOM: room, AIORTC_IDENTITY: identity, AIORTC_WANT_PACKETS: "150", AIORTC_TIMEOUT: "60" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const stderr = [];
    child.stderr.on("data", (d) => stderr.push(d.toString()));
    const events = readline.createInterface({ input: child.stdout });
    const received = new Promise((resolve, reject) => {
      events.on("line", (line) => {
        if (JSON.parse(line).event === "received") resolve();
      });
      child.on("exit", (code) => reject(new Error(`${identity} exited ${code} before receiving: ${stderr.join("")}`)));
    });
    const exited = new Promise((resolve) => child.on("exit", (code) => resolve({ code, stderr: stderr.join("") })));
    return { identity, child, received, exited };
  });
  await Promise.all(children.map((c) => c.received));
  for (const c of children) c.child.stdin.end("leave\n");
  for (const c of children) {
    const { code, stderr } = await c.exited;
    check(code === 0, `aiortc participant ${c.identity} exited ${code}`, stderr);
  }
}

/** Download a resource's media the way Twilio's docs show it. */
async function downloadMedia(mediaUrl, what) {
  const response = await client.request({ method: "GET", uri: mediaUrl });
  checkEqual(response.statusCode, 302, `${what}: /Media answers a redirect`);
  const body = typeof response.body === "string" ? JSON.parse(response.body) : response.body;
  check(typeof body.redirect_to === "string", `${what}: the body names redirect_to`, body);
  // The link works without credentials (as Twilio's pre-signed URLs do).
  const media = await fetch(body.redirect_to);
  checkEqual(media.status, 200, `${what}: the signed link serves the file`);
  const bytes = Buffer.from(await media.arrayBuffer());
  // A tampered link does not.
  const tampered = body.redirect_to.replace(/Signature=([0-9a-f])/, (_, c) => `Signature=${c === "0" ? "1" : "0"}`);
  checkEqual((await fetch(tampered)).status, 403, `${what}: a tampered link is refused`);
  return bytes;
}

let room;
let recordings;
let composition;
let hook;
const identities = [`${RUN}-a`, `${RUN}-b`];

await run(`node recordings (twilio-node ${TWILIO_VERSION})`, [
  [
    "a room recorded on connect has include-all rules; replacing them works",
    async () => {
      room = await video.rooms.create({ uniqueName: RUN, type: "group", recordParticipantsOnConnect: true });
      checkEqual(room.recordParticipantsOnConnect, true, "recordParticipantsOnConnect");
      const rules = await video.rooms(room.sid).recordingRules.fetch();
      checkEqual(rules.roomSid, room.sid, "rules.roomSid");
      checkEqual(JSON.parse(JSON.stringify(rules.rules)), [{ type: "include", all: true }], "the default rules");
      // Record everything but the second participant's video.
      const updated = await video.rooms(room.sid).recordingRules.update({
        rules: [
          { type: "include", all: true },
          { type: "exclude", publisher: identities[1], kind: "video" },
        ],
      });
      checkEqual(updated.rules.length, 2, "two rules stored");
      checkEqual(updated.rules[1].type, "exclude", "the exclude rule");
      await expectRestError(
        video.rooms(room.sid).recordingRules.update({ rules: [{ type: "sometimes", all: true }] }),
        53120,
        400,
        "a rule of an unknown type",
      );
    },
  ],
  [
    "a composition hook is created, listed, fetched and updated",
    async () => {
      hook = await video.compositionHooks.create({ friendlyName: RUN, audioSources: ["*"], format: "webm", resolution: "320x240" });
      check(/^HK[0-9a-f]{32}$/.test(hook.sid), "hook sid", hook.sid);
      checkEqual(hook.enabled, true, "enabled by default");
      checkEqual(hook.audioSources, ["*"], "audioSources");
      await expectRestError(video.compositionHooks.create({ friendlyName: RUN, audioSources: ["*"] }), 20001, 400, "a second hook of the same name");
      const listed = await video.compositionHooks.list({ friendlyName: RUN });
      checkEqual(listed.map((h) => h.sid), [hook.sid], "compositionHooks.list({friendlyName})");
      const updated = await video.compositionHooks(hook.sid).update({ friendlyName: RUN, resolution: "640x480" });
      checkEqual(updated.resolution, "640x480", "update");
      checkEqual((await video.compositionHooks(hook.sid).fetch()).format, "webm", "fetch keeps what the update did not name");
    },
  ],
  [
    "two participants meet; what the rules include is recorded, and completes",
    async () => {
      await aiortcMeeting(RUN, identities);
      await video.rooms(room.sid).update({ status: "completed" });
      recordings = await eventually(async () => {
        const list = await video.recordings.list({ groupingSid: [room.sid] });
        return list.length > 0 && list.every((r) => r.status !== "processing") && list;
      }, "the recordings to finish");
      const participants = await video.rooms(room.sid).participants.list();
      const who = Object.fromEntries(participants.map((p) => [p.sid, p.identity]));
      const seen = recordings.map((r) => `${who[r.groupingSids.participant_sid]} ${r.type}`).sort();
      checkEqual(seen, [`${identities[0]} audio`, `${identities[0]} video`, `${identities[1]} audio`], "recorded tracks (bob's video excluded)");
      for (const r of recordings) {
        check(/^RT[0-9a-f]{32}$/.test(r.sid), "recording sid", r.sid);
        checkEqual(r.status, "completed", `${r.sid} status`);
        checkEqual(r.accountSid, ACCOUNT_SID, "accountSid");
        checkEqual(r.groupingSids.room_sid, room.sid, "groupingSids.room_sid");
        checkEqual(r.codec, r.type === "audio" ? "opus" : "VP8", `${r.type} codec`);
        checkEqual(r.containerFormat, r.type === "audio" ? "mka" : "mkv", `${r.type} containerFormat`);
        check(/^MT[0-9a-f]{32}$/.test(r.sourceSid), "sourceSid is the track", r.sourceSid);
        check(r.duration >= 1 && r.size > 1000, "duration and size", { duration: r.duration, size: r.size });
        checkEqual(r.url, `${SALON_URL}/v1/Recordings/${r.sid}`, "url");
        checkEqual(r.links.media, `${SALON_URL}/v1/Recordings/${r.sid}/Media`, "links.media");
        const fetched = await video.recordings(r.sid).fetch();
        checkEqual(fetched.trackName, r.trackName, "fetch by SID");
        const inRoom = await video.rooms(room.sid).recordings(r.sid).fetch();
        checkEqual(inRoom.sourceSid, r.sourceSid, "the room's recording");
      }
      const roomList = await video.rooms(room.sid).recordings.list();
      checkEqual(roomList.length, 3, "rooms(sid).recordings.list()");
      const audio = await video.recordings.list({ groupingSid: [room.sid], mediaType: "audio" });
      checkEqual(audio.length, 2, "filtered by mediaType");
      await expectRestError(video.recordings("RT" + "f".repeat(32)).fetch(), 20404, 404, "a missing recording");
    },
  ],
  [
    "each recording's media downloads through the /Media redirect",
    async () => {
      for (const r of recordings) {
        const bytes = await downloadMedia(r.links.media, r.sid);
        checkEqual(bytes.length, r.size, `${r.sid}: the file has the recording's size`);
        checkEqual([...bytes.subarray(0, 4)], [0x1a, 0x45, 0xdf, 0xa3], `${r.sid}: a Matroska file`);
      }
    },
  ],
  [
    "a composition of the room completes, lists, downloads and deletes",
    async () => {
      await expectRestError(
        video.compositions.create({ roomSid: room.sid, format: "avi", audioSources: ["*"] }),
        20001,
        400,
        "an unknown format",
      );
      await expectRestError(video.compositions.create({ roomSid: "RM" + "f".repeat(32), audioSources: ["*"] }), 20404, 404, "a missing room");
      composition = await video.compositions.create({
        roomSid: room.sid,
        videoLayout: { grid: { video_sources: ["*"] } },
        audioSources: ["*"],
        format: "mp4",
        resolution: "320x240",
      });
      check(/^CJ[0-9a-f]{32}$/.test(composition.sid), "composition sid", composition.sid);
      checkEqual(composition.roomSid, room.sid, "roomSid");
      const done = await eventually(async () => {
        const c = await video.compositions(composition.sid).fetch();
        check(c.status !== "failed", "the composition failed", c.toJSON());
        return c.status === "completed" && c;
      }, "the composition to complete", 120_000);
      check(done.duration >= 1 && done.size > 1000, "duration and size", { duration: done.duration, size: done.size });
      checkEqual(done.format, "mp4", "format");
      // The hook composed the room when it ended; this one is the second.
      const listed = await video.compositions.list({ roomSid: room.sid });
      checkEqual(listed.length, 2, "compositions.list({roomSid}): the hook's and this one");
      check(listed.some((c) => c.sid === composition.sid), "this composition is listed", listed.map((c) => c.sid));
      const hooked = listed.find((c) => c.sid !== composition.sid);
      checkEqual([hooked.format, hooked.resolution], ["webm", "640x480"], "the hook's composition has the hook's settings");
      checkEqual(await video.compositionHooks(hook.sid).remove(), true, "the hook is removed");
      await expectRestError(video.compositionHooks(hook.sid).fetch(), 20404, 404, "a removed hook");
      const bytes = await downloadMedia(done.links.media, composition.sid);
      checkEqual(bytes.length, done.size, "the composition's file has its size");
      checkEqual(bytes.subarray(4, 8).toString("latin1"), "ftyp", "an MP4 file");
      checkEqual(await video.compositions(composition.sid).remove(), true, "remove()");
      await expectRestError(video.compositions(composition.sid).fetch(), 20404, 404, "a deleted composition");
    },
  ],
  [
    "a deleted recording is gone, and a room without recordings cannot be composed",
    async () => {
      for (const r of recordings) checkEqual(await video.recordings(r.sid).remove(), true, `remove ${r.sid}`);
      await expectRestError(video.recordings(recordings[0].sid).fetch(), 20404, 404, "a deleted recording");
      await expectRestError(
        video.compositions.create({ roomSid: room.sid, audioSources: ["*"] }),
        20001,
        400,
        "a composition of deleted recordings",
      );
    },
  ],
]);
