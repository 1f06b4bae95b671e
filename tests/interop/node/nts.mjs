// Twilio's Network Traversal Service through twilio-node, pointed at Salon
// by overriding the api domain's base URL:
//
//     const client = twilio(apiKey, apiSecret, { accountSid });
//     client.api.baseUrl = SALON_URL;
//     const token = await client.tokens.create({ ttl: 600 });
//
// (tests/interop/python/nts.py also allocates with the credentials.)
//
// Environment: SALON_URL, SALON_ACCOUNT_SID, SALON_AUTH_TOKEN,
// SALON_API_KEY, SALON_API_SECRET.

import { createRequire } from "node:module";

import twilio from "twilio";

import { check, checkEqual, env, expectRestError, run } from "./common.mjs";

const SALON_URL = env("SALON_URL").replace(/\/+$/, "");
const ACCOUNT_SID = env("SALON_ACCOUNT_SID");
const AUTH_TOKEN = env("SALON_AUTH_TOKEN");
const API_KEY = env("SALON_API_KEY");
const API_SECRET = env("SALON_API_SECRET");

const TWILIO_VERSION = createRequire(import.meta.url)("twilio/package.json").version;

function salonClient(username, password, options) {
  const client = twilio(username, password, options);
  client.api.baseUrl = SALON_URL;
  return client;
}

const client = salonClient(API_KEY, API_SECRET, { accountSid: ACCOUNT_SID });

await run(`node nts (twilio-node ${TWILIO_VERSION})`, [
  [
    "client.tokens.create({ttl: 600}) answers like Twilio",
    async () => {
      const token = await client.tokens.create({ ttl: 600 });
      checkEqual(token.accountSid, ACCOUNT_SID, "accountSid");
      checkEqual(token.ttl, "600", "ttl");
      check(token.dateCreated instanceof Date && !isNaN(token.dateCreated), "dateCreated is a date", token.dateCreated);
      check(token.username && token.password, "username and password", token);
      const urls = token.iceServers.map((s) => s.urls);
      check(urls.some((u) => u.startsWith("stun:")), "a STUN server", urls);
      check(urls.some((u) => u.startsWith("turn:") && u.endsWith("transport=udp")), "TURN over UDP", urls);
      check(urls.some((u) => u.startsWith("turn:") && u.endsWith("transport=tcp")), "TURN over TCP", urls);
      for (const server of token.iceServers) {
        checkEqual(server.url, server.urls, "url and urls");
        if (server.urls.startsWith("turn")) {
          checkEqual([server.username, server.credential], [token.username, token.password], "credentials");
        }
      }
    },
  ],
  [
    "the default ttl is 24 h; AccountSid:AuthToken works",
    async () => {
      const token = await salonClient(ACCOUNT_SID, AUTH_TOKEN).tokens.create();
      checkEqual(token.ttl, "86400", "the default ttl");
    },
  ],
  [
    "a bad ttl and a wrong secret fail with Twilio's codes",
    async () => {
      await expectRestError(client.tokens.create({ ttl: 0 }), 20001, 400, "ttl=0");
      await expectRestError(
        salonClient(API_KEY, "wrong", { accountSid: ACCOUNT_SID }).tokens.create(),
        20003,
        401,
        "a wrong secret",
      );
    },
  ],
]);
