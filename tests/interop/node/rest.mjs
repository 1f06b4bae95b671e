// The Rooms REST API through twilio-node, pointed at Salon by overriding the
// video domain's base URL:
//
//     const client = twilio(apiKey, apiSecret, { accountSid });
//     client.video.baseUrl = SALON_URL;
//
// (twilio-node's Domain.absoluteUrl() joins baseUrl and the resource path;
// pages are followed through the absolute next_page_url Salon returns.)
//
// Environment: SALON_URL (Salon's public URL, as it writes it in `url`
// fields), SALON_ACCOUNT_SID, SALON_AUTH_TOKEN, SALON_API_KEY,
// SALON_API_SECRET.

import { createRequire } from "node:module";

import twilio from "twilio";

import { check, checkEqual, env, expectRestError, run } from "./common.mjs";

const SALON_URL = env("SALON_URL").replace(/\/+$/, "");
const ACCOUNT_SID = env("SALON_ACCOUNT_SID");
const AUTH_TOKEN = env("SALON_AUTH_TOKEN");
const API_KEY = env("SALON_API_KEY");
const API_SECRET = env("SALON_API_SECRET");

const TWILIO_VERSION = createRequire(import.meta.url)("twilio/package.json").version;

/** A twilio-node client whose video domain is Salon. */
function salonClient(username, password, options) {
  const client = twilio(username, password, options);
  client.video.baseUrl = SALON_URL;
  return client;
}

const client = salonClient(API_KEY, API_SECRET, { accountSid: ACCOUNT_SID });
const rooms = client.video.v1.rooms;

// Every request this client sends (method and absolute URL), to see the
// pages it follows.
const requests = [];
const send = client.request.bind(client);
client.request = (opts) => {
  const query = opts.params && Object.keys(opts.params).length ? "?" + new URLSearchParams(opts.params) : "";
  requests.push(`${opts.method.toUpperCase()} ${opts.uri}${query}`);
  return send(opts);
};

// Names unique to this run, so the script can run again against the same server.
const RUN = `node-${Date.now().toString(36)}-${process.pid}`;
const STATUS_CALLBACK = "https://app.example.com/video/status?run=" + RUN;
const MISSING_ROOM = "RM" + "f".repeat(32);
const MISSING_PARTICIPANT = "PA" + "f".repeat(32);

const isDate = (d) => d instanceof Date && !Number.isNaN(d.getTime());

/** Checks every room resource must pass. */
function checkRoom(room, what) {
  check(/^RM[0-9a-f]{32}$/.test(room.sid), `${what}: sid should be RM + 32 hex digits`, room.sid);
  checkEqual(room.accountSid, ACCOUNT_SID, `${what}: accountSid`);
  checkEqual(room.url, `${SALON_URL}/v1/Rooms/${room.sid}`, `${what}: url (absolute, under SALON_URL)`);
  checkEqual(
    room.links && room.links.participants,
    `${SALON_URL}/v1/Rooms/${room.sid}/Participants`,
    `${what}: links.participants`,
  );
  check(isDate(room.dateCreated), `${what}: dateCreated should parse as a date`, room.dateCreated);
  check(isDate(room.dateUpdated), `${what}: dateUpdated should parse as a date`, room.dateUpdated);
  check(
    Math.abs(room.dateCreated.getTime() - Date.now()) < 10 * 60 * 1000,
    `${what}: dateCreated should be recent`,
    room.dateCreated,
  );
}

let created; // the room of the first scenario
const pagingRooms = []; // seven rooms, oldest first

await run(`node rest (twilio-node ${TWILIO_VERSION})`, [
  [
    "create a group-small room with every option",
    async () => {
      const uniqueName = `${RUN}-standup`;
      created = await rooms.create({
        uniqueName,
        type: "group-small",
        maxParticipants: 3,
        emptyRoomTimeout: 7,
        videoCodecs: ["VP8"],
        statusCallback: STATUS_CALLBACK,
      });
      checkRoom(created, "created room");
      checkEqual(created.status, "in-progress", "status");
      checkEqual(created.uniqueName, uniqueName, "uniqueName");
      checkEqual(created.type, "group-small", "type");
      checkEqual(created.maxParticipants, 3, "maxParticipants");
      checkEqual(created.emptyRoomTimeout, 7, "emptyRoomTimeout");
      checkEqual(created.videoCodecs, ["VP8"], "videoCodecs");
      checkEqual(created.statusCallback, STATUS_CALLBACK, "statusCallback");
      checkEqual(created.statusCallbackMethod, "POST", "statusCallbackMethod");
      check(created.endTime == null, "endTime should be null while in progress", created.endTime);
      check(created.duration == null, "duration should be null while in progress", created.duration);
    },
  ],
  [
    "fetch the room by SID and by unique name",
    async () => {
      const bySid = await rooms(created.sid).fetch();
      checkRoom(bySid, "fetched by SID");
      checkEqual(bySid.sid, created.sid, "sid fetched by SID");
      checkEqual(bySid.uniqueName, created.uniqueName, "uniqueName fetched by SID");
      checkEqual(bySid.maxParticipants, 3, "maxParticipants fetched by SID");
      const byName = await rooms(created.uniqueName).fetch();
      checkEqual(byName.sid, created.sid, "sid fetched by unique name");
      checkEqual(byName.status, "in-progress", "status fetched by unique name");
    },
  ],
  [
    "a duplicate unique name fails with 53113 / 400",
    async () => {
      await expectRestError(rooms.create({ uniqueName: created.uniqueName }), 53113, 400, "duplicate unique name");
    },
  ],
  [
    "invalid parameters fail with Twilio's codes (53108, 53107, 53109)",
    async () => {
      await expectRestError(
        rooms.create({ uniqueName: `${RUN}-bad-type`, type: "small-group" }),
        53108,
        400,
        "Type small-group",
      );
      await expectRestError(
        rooms.create({ uniqueName: `${RUN}-too-many`, type: "group-small", maxParticipants: 99 }),
        53107,
        400,
        "MaxParticipants 99 for group-small",
      );
      await expectRestError(
        rooms.create({ uniqueName: `${RUN}-no-timeout`, emptyRoomTimeout: 0 }),
        53109,
        400,
        "EmptyRoomTimeout 0",
      );
    },
  ],
  [
    "fetching a room that does not exist fails with 20404 / 404",
    async () => {
      await expectRestError(rooms(MISSING_ROOM).fetch(), 20404, 404, `fetch ${MISSING_ROOM}`);
      await expectRestError(rooms(`${RUN}-never-created`).fetch(), 20404, 404, "fetch an unknown unique name");
    },
  ],
  [
    "list follows next_page_url: 7 rooms in pages of 2, newest first",
    async () => {
      for (let i = 0; i < 7; i++) {
        pagingRooms.push(await rooms.create({ uniqueName: `${RUN}-page-${i}` }));
      }
      const newestFirst = pagingRooms.map((r) => r.sid).reverse();
      requests.length = 0;
      const listed = await rooms.list({ status: "in-progress", pageSize: 2, limit: 7 });
      checkEqual(requests.length, 4, `7 rooms in pages of 2 should take 4 requests (${requests.join(", ")})`);
      check(
        requests[0].startsWith(`GET ${SALON_URL}/v1/Rooms?`),
        "the first page should be requested from SALON_URL",
        requests[0],
      );
      for (const request of requests.slice(1)) {
        check(
          request.startsWith(`GET ${SALON_URL}/v1/Rooms?`) && request.includes("PageToken="),
          "later pages should be the next_page_url Salon returned",
          requests,
        );
      }
      checkEqual(
        listed.map((r) => r.sid),
        newestFirst,
        "rooms.list({status: 'in-progress', pageSize: 2, limit: 7}) should be the 7 new rooms, newest first",
      );
      listed.forEach((r) => checkRoom(r, "listed room"));

      const seen = [];
      await rooms.each({ status: "in-progress", pageSize: 2, limit: 7 }, (room) => {
        seen.push(room.sid);
      });
      checkEqual(seen, newestFirst, "rooms.each with pageSize 2, limit 7");
    },
  ],
  [
    "pages carry absolute page URLs under SALON_URL and repeat the filter",
    async () => {
      let page = await rooms.page({ status: "in-progress", pageSize: 2 });
      const collected = [];
      let pages = 0;
      while (page) {
        pages += 1;
        check(page.instances.length <= 2, "a page should hold at most PageSize rooms", page.instances.length);
        collected.push(...page.instances.map((r) => r.sid));
        if (page.nextPageUrl) {
          check(
            page.nextPageUrl.startsWith(`${SALON_URL}/v1/Rooms?`),
            "next_page_url should be absolute under SALON_URL",
            page.nextPageUrl,
          );
          const query = new URL(page.nextPageUrl).searchParams;
          checkEqual(query.get("Status"), "in-progress", "next_page_url repeats Status");
          checkEqual(query.get("PageSize"), "2", "next_page_url repeats PageSize");
        }
        check(pages <= 100, "paging should end");
        page = await page.nextPage();
      }
      check(pages >= 4, "8+ rooms in pages of 2 should take at least 4 pages", pages);
      const ours = [created.sid, ...pagingRooms.map((r) => r.sid)];
      for (const sid of ours) {
        check(collected.includes(sid), `walking every page should reach room ${sid}`, collected);
      }
      checkEqual(new Set(collected).size, collected.length, "no room should appear on two pages");
      checkEqual(
        collected.filter((sid) => ours.includes(sid)),
        [...ours].reverse(),
        "rooms across pages should be newest first",
      );
    },
  ],
  [
    "list filtered by unique name",
    async () => {
      const listed = await rooms.list({ uniqueName: pagingRooms[3].uniqueName });
      checkEqual(
        listed.map((r) => r.sid),
        [pagingRooms[3].sid],
        "rooms.list({uniqueName}) should return that room only",
      );
    },
  ],
  [
    "complete a room: status completed, endTime and duration set",
    async () => {
      const room = pagingRooms[0];
      const done = await rooms(room.sid).update({ status: "completed" });
      checkRoom(done, "completed room");
      checkEqual(done.sid, room.sid, "sid of the completed room");
      checkEqual(done.status, "completed", "status after update");
      check(isDate(done.endTime), "endTime should be a date once completed", done.endTime);
      check(done.endTime.getTime() >= done.dateCreated.getTime(), "endTime should not precede dateCreated", done);
      check(Number.isInteger(done.duration) && done.duration >= 0, "duration should be a whole number of seconds", done.duration);
      const fetched = await rooms(room.sid).fetch();
      checkEqual(fetched.status, "completed", "status fetched after completion");
    },
  ],
  [
    "completed rooms: listed with status completed, not in progress; the name is free again",
    async () => {
      const room = pagingRooms[0];
      const completed = await rooms.list({ status: "completed", pageSize: 50 });
      check(
        completed.some((r) => r.sid === room.sid && r.status === "completed"),
        "rooms.list({status: 'completed'}) should include the completed room",
        completed.map((r) => r.sid),
      );
      const inProgress = await rooms.list({ status: "in-progress" });
      check(!inProgress.some((r) => r.sid === room.sid), "the completed room should not be listed in progress");
      await expectRestError(rooms(room.uniqueName).fetch(), 20404, 404, "fetch a completed room by unique name");
      const again = await rooms.create({ uniqueName: room.uniqueName });
      check(again.sid !== room.sid, "a new room may take the unique name of a completed one", again.sid);
      checkEqual(again.status, "in-progress", "status of the room reusing the name");
    },
  ],
  [
    "participants: an empty list, and 20404 for one that does not exist",
    async () => {
      const participants = await rooms(created.sid).participants.list();
      checkEqual(participants, [], "participants of a room nobody joined");
      await expectRestError(
        rooms(created.sid).participants(MISSING_PARTICIPANT).fetch(),
        20404,
        404,
        `fetch participant ${MISSING_PARTICIPANT}`,
      );
      await expectRestError(
        rooms(created.sid).participants("nobody").fetch(),
        20404,
        404,
        "fetch participant by an identity nobody has",
      );
      await expectRestError(rooms(MISSING_ROOM).participants.list(), 20404, 404, "participants of a missing room");
    },
  ],
  [
    "a wrong API secret fails with 20003 / 401",
    async () => {
      const wrong = salonClient(API_KEY, "wrong-" + API_SECRET, { accountSid: ACCOUNT_SID });
      await expectRestError(wrong.video.v1.rooms.list({ limit: 1 }), 20003, 401, "list rooms with a wrong secret");
      await expectRestError(wrong.video.v1.rooms(created.sid).fetch(), 20003, 401, "fetch a room with a wrong secret");
      const wrongToken = salonClient(ACCOUNT_SID, "wrong-" + AUTH_TOKEN);
      await expectRestError(wrongToken.video.v1.rooms.create({}), 20003, 401, "create a room with a wrong auth token");
    },
  ],
  [
    "AccountSid:AuthToken authentication works too",
    async () => {
      const account = salonClient(ACCOUNT_SID, AUTH_TOKEN);
      const fetched = await account.video.v1.rooms(created.sid).fetch();
      checkEqual(fetched.sid, created.sid, "room fetched with the account's auth token");
      const room = await account.video.v1.rooms.create({ uniqueName: `${RUN}-account-auth`, type: "go" });
      checkRoom(room, "room created with the auth token");
      checkEqual(room.type, "go", "type");
      checkEqual(room.maxParticipants, 2, "a go room admits 2");
      const done = await account.video.v1.rooms(room.sid).update({ status: "completed" });
      checkEqual(done.status, "completed", "completed with the auth token");
    },
  ],
  [
    "clean up: complete this run's rooms",
    async () => {
      const mine = (await rooms.list({ status: "in-progress" })).filter((r) => r.uniqueName.startsWith(RUN));
      for (const room of mine) {
        await rooms(room.sid).update({ status: "completed" });
      }
      const left = (await rooms.list({ status: "in-progress" })).filter((r) => r.uniqueName.startsWith(RUN));
      checkEqual(left, [], "rooms of this run still in progress");
    },
  ],
]);
