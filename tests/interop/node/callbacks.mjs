// Status callbacks through twilio-node, in two steps the Rust test drives
// (crates/salon/tests/status_callbacks.rs):
//
//     node callbacks.mjs create NAME CALLBACK_URL METHOD
//         create a room with statusCallback/statusCallbackMethod through
//         twilio-node; print the room's SID and what Salon said back.
//     node callbacks.mjs validate CAPTURED.json
//         check every request a receiver captured with twilio-node's
//         `validateRequest`, as an app's webhook handler does; check that a
//         tampered request fails.
//
// CAPTURED.json is a list of {method, url, params, signature}: `url` is the
// full URL the receiver was asked for (with the query), `params` the POST
// body's parameters (empty for a GET, whose parameters are in the URL).
//
// Environment: SALON_URL, SALON_ACCOUNT_SID, SALON_AUTH_TOKEN,
// SALON_API_KEY, SALON_API_SECRET.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

import twilio from "twilio";

import { check, checkEqual, env, run } from "./common.mjs";

const SALON_URL = env("SALON_URL").replace(/\/+$/, "");
const ACCOUNT_SID = env("SALON_ACCOUNT_SID");
const AUTH_TOKEN = env("SALON_AUTH_TOKEN");
const API_KEY = env("SALON_API_KEY");
const API_SECRET = env("SALON_API_SECRET");
const TWILIO_VERSION = createRequire(import.meta.url)("twilio/package.json").version;

const [command, ...args] = process.argv.slice(2);

if (command === "create") {
  const [name, callback, method] = args;
  const client = twilio(API_KEY, API_SECRET, { accountSid: ACCOUNT_SID });
  client.video.baseUrl = SALON_URL;
  await run(`node callbacks create (twilio-node ${TWILIO_VERSION})`, [
    [
      `create ${name} with a ${method} status callback`,
      async () => {
        const room = await client.video.v1.rooms.create({
          uniqueName: name,
          type: "group",
          statusCallback: callback,
          statusCallbackMethod: method,
        });
        checkEqual(room.statusCallback, callback, "statusCallback");
        checkEqual(room.statusCallbackMethod, method, "statusCallbackMethod");
        console.log(`ROOM ${room.sid}`);
      },
    ],
  ]);
} else if (command === "validate") {
  const captured = JSON.parse(readFileSync(args[0], "utf8"));
  await run(`node callbacks validate (twilio-node ${TWILIO_VERSION})`, [
    [
      `twilio.validateRequest accepts all ${captured.length} captured callbacks`,
      async () => {
        check(captured.length > 0, "nothing was captured");
        for (const request of captured) {
          const ok = twilio.validateRequest(AUTH_TOKEN, request.signature, request.url, request.params);
          check(ok, `${request.method} ${request.params.StatusCallbackEvent || request.url}: signature rejected`, request);
        }
      },
    ],
    [
      "a tampered callback is rejected",
      async () => {
        const request = captured.find((r) => r.method === "POST") || captured[0];
        const params = { ...request.params, ParticipantIdentity: "mallory" };
        const url = request.method === "GET" ? request.url.replace("RoomSid=RM", "RoomSid=RX") : request.url;
        check(
          !twilio.validateRequest(AUTH_TOKEN, request.signature, url, request.method === "GET" ? {} : params),
          "a changed parameter should fail validation",
        );
        check(
          !twilio.validateRequest("0".repeat(32), request.signature, request.url, request.params),
          "another auth token should fail validation",
        );
      },
    ],
  ]);
} else {
  console.error("usage: callbacks.mjs create NAME CALLBACK_URL METHOD | validate CAPTURED.json");
  process.exit(2);
}
