// Access tokens between twilio-node and Salon, both ways:
// tokens minted by twilio-node's AccessToken + VideoGrant verify in Salon
// (`salon token inspect`), bad ones are rejected with Twilio's codes, and
// tokens Salon mints (`salon token create`) are the tokens twilio-node would
// mint, down to the key order, and verify with `jsonwebtoken`.
//
// Environment: SALON_ACCOUNT_SID, SALON_API_KEY, SALON_API_SECRET, SALON_BIN,
// SALON_DATA_DIR (the data directory of a Salon configured with that account
// and key).

import jwt from "jsonwebtoken";
import twilio from "twilio";

import { check, checkEqual, env, run, salon } from "./common.mjs";

const ACCOUNT_SID = env("SALON_ACCOUNT_SID");
const API_KEY = env("SALON_API_KEY");
const API_SECRET = env("SALON_API_SECRET");
env("SALON_BIN");
env("SALON_DATA_DIR");

const { AccessToken } = twilio.jwt;
const { VideoGrant } = AccessToken;

const OTHER_ACCOUNT = "AC" + "e".repeat(32);
const UNKNOWN_KEY = "SK" + "e".repeat(32);

/** A token minted by twilio-node, the way the Twilio tutorials do. */
function nodeToken({
  identity = "alice",
  room,
  ttl,
  nbf,
  region,
  algorithm,
  accountSid = ACCOUNT_SID,
  keySid = API_KEY,
  secret = API_SECRET,
} = {}) {
  const options = { identity };
  if (ttl !== undefined) options.ttl = ttl;
  if (nbf !== undefined) options.nbf = nbf;
  if (region !== undefined) options.region = region;
  const token = new AccessToken(accountSid, keySid, secret, options);
  token.addGrant(room === undefined ? new VideoGrant() : new VideoGrant({ room }));
  return token.toJwt(algorithm);
}

/** Run `fn` with the clock `seconds` in the past, as a token server with a slow clock. */
function withClockShifted(seconds, fn) {
  const realNow = Date.now;
  Date.now = () => realNow() - seconds * 1000;
  try {
    return fn();
  } finally {
    Date.now = realNow;
  }
}

function now() {
  return Math.floor(Date.now() / 1000);
}

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** `salon token inspect` must accept `token` for `identity` in `room` (undefined: any room). */
function expectValid(token, { identity, room, algorithm = "HS256" }, what) {
  const out = salon("token", "inspect", token);
  check(
    out.code === 0 && out.stdout.includes("verdict: valid"),
    `${what}: salon token inspect should accept the token (exit 0, "verdict: valid"); exit ${out.code}\n${out.stdout}${out.stderr}`,
  );
  check(
    new RegExp(`^\\s*identity\\s+${escapeRegExp(identity)}$`, "m").test(out.stdout),
    `${what}: inspect should report identity ${JSON.stringify(identity)}`,
    out.stdout,
  );
  const roomText = room === undefined ? "any room" : room;
  check(
    new RegExp(`^\\s*room\\s+${escapeRegExp(roomText)}$`, "m").test(out.stdout),
    `${what}: inspect should report room ${JSON.stringify(roomText)}`,
    out.stdout,
  );
  check(
    new RegExp(`^\\s*signed by\\s+${API_KEY} \\(${algorithm}\\)$`, "m").test(out.stdout),
    `${what}: inspect should report the key ${API_KEY} and ${algorithm}`,
    out.stdout,
  );
  return out.stdout;
}

/** `salon token inspect` must reject `token` with Twilio error `code` and exit 1. */
function expectRejected(token, code, what) {
  const out = salon("token", "inspect", token);
  check(
    out.code === 1 && out.stdout.includes(`rejected with ${code}`),
    `${what}: salon token inspect should reject the token with ${code} and exit 1; exit ${out.code}\n${out.stdout}${out.stderr}`,
  );
}

/** `salon token create …` → the token. */
function salonToken(...args) {
  const out = salon("token", "create", ...args);
  check(out.code === 0, `salon token create ${args.join(" ")} failed (exit ${out.code})\n${out.stdout}${out.stderr}`);
  const token = out.stdout.trim();
  check(/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token), "salon token create should print only the JWT", out.stdout);
  return token;
}

/** The header and payload JSON texts of a token, as written (key order included). */
function rawParts(token) {
  const [header, payload] = token.split(".");
  return {
    header: Buffer.from(header, "base64url").toString("utf8"),
    payload: Buffer.from(payload, "base64url").toString("utf8"),
  };
}

/** Compare a token Salon minted with one twilio-node minted for the same grant and ttl. */
function compareShapes(salonJwt, nodeJwt, ttl, what) {
  const ours = jwt.decode(salonJwt, { complete: true });
  const theirs = jwt.decode(nodeJwt, { complete: true });
  check(ours !== null, `${what}: jsonwebtoken cannot decode Salon's token`, salonJwt);
  checkEqual(Object.keys(ours.header), Object.keys(theirs.header), `${what}: header keys (in order)`);
  checkEqual(ours.header, theirs.header, `${what}: header values`);
  checkEqual(Object.keys(ours.payload), Object.keys(theirs.payload), `${what}: payload keys (in order)`);
  checkEqual(
    Object.keys(ours.payload),
    ["jti", "grants", "iat", "exp", "iss", "sub"],
    `${what}: payload keys of Salon's token`,
  );
  checkEqual(ours.payload.grants, theirs.payload.grants, `${what}: grants`);
  checkEqual(Object.keys(ours.payload.grants), Object.keys(theirs.payload.grants), `${what}: grant key order`);
  checkEqual(ours.payload.iss, API_KEY, `${what}: iss`);
  checkEqual(ours.payload.sub, ACCOUNT_SID, `${what}: sub`);
  checkEqual(ours.payload.jti, `${ours.payload.iss}-${ours.payload.iat}`, `${what}: jti is <iss>-<iat>`);
  checkEqual(ours.payload.exp - ours.payload.iat, ttl, `${what}: exp - iat is the ttl`);
  check(Math.abs(ours.payload.iat - now()) <= 60, `${what}: iat should be now`, ours.payload.iat);
  return ours;
}

await run("node tokens (twilio-node " + (await twilioVersion()) + ")", [
  [
    "twilio-node HS256 token with a room verifies in Salon",
    () => {
      const token = nodeToken({ identity: "alice", room: "standup" });
      expectValid(token, { identity: "alice", room: "standup" }, "HS256 + room");
    },
  ],
  [
    "twilio-node HS384 and HS512 tokens verify in Salon",
    () => {
      for (const algorithm of ["HS384", "HS512"]) {
        const token = nodeToken({ identity: "bob", room: "standup", algorithm });
        check(jwt.decode(token, { complete: true }).header.alg === algorithm, `twilio-node should sign with ${algorithm}`);
        expectValid(token, { identity: "bob", room: "standup", algorithm }, algorithm);
      }
    },
  ],
  [
    "twilio-node token without a room verifies for any room",
    () => {
      const token = nodeToken({ identity: "carol" });
      checkEqual(jwt.decode(token).grants, { identity: "carol", video: {} }, "twilio-node grants without a room");
      expectValid(token, { identity: "carol", room: undefined }, "no room");
    },
  ],
  [
    "twilio-node token granting a room by RM SID verifies",
    () => {
      const sid = "RM" + "0123456789abcdef".repeat(2);
      expectValid(nodeToken({ identity: "dave", room: sid }), { identity: "dave", room: sid }, "room SID grant");
    },
  ],
  [
    "twilio-node token with a custom ttl verifies, and a 24 h ttl is the limit",
    () => {
      const short = nodeToken({ identity: "erin", room: "standup", ttl: 600 });
      const claims = jwt.decode(short);
      checkEqual(claims.exp - claims.iat, 600, "twilio-node exp - iat with ttl 600");
      expectValid(short, { identity: "erin", room: "standup" }, "ttl 600");
      expectValid(nodeToken({ identity: "erin", ttl: 86400 }), { identity: "erin" }, "ttl 86400 (24 h)");
      expectRejected(nodeToken({ identity: "erin", ttl: 86400 + 3600 }), 20104, "ttl 25 h (over Twilio's 24 h limit)");
    },
  ],
  [
    "twilio-node token with nbf: past verifies, small skew tolerated, future rejected with 20105",
    () => {
      const past = nodeToken({ identity: "frank", room: "standup", nbf: now() - 60 });
      check(typeof jwt.decode(past).nbf === "number", "twilio-node should write nbf");
      const stdout = expectValid(past, { identity: "frank", room: "standup" }, "nbf 60 s ago");
      check(/^\s*not before\s/m.test(stdout), "inspect should show the not-before time", stdout);
      expectValid(nodeToken({ identity: "frank", nbf: now() + 10 }), { identity: "frank" }, "nbf 10 s ahead (clock skew)");
      expectRejected(nodeToken({ identity: "frank", nbf: now() + 3600 }), 20105, "nbf in an hour");
    },
  ],
  [
    "twilio-node token with a region (twr header) verifies",
    () => {
      const token = nodeToken({ identity: "grace", room: "standup", region: "ie1" });
      checkEqual(jwt.decode(token, { complete: true }).header.twr, "ie1", "twilio-node twr header");
      expectValid(token, { identity: "grace", room: "standup" }, "twr region header");
    },
  ],
  [
    "identities and rooms with spaces, quotes and non-ASCII characters survive",
    () => {
      const identity = `Zoë "Z" O'Brien/🎥 <&>`;
      const room = "Salle de réunion #1 — 会议";
      expectValid(nodeToken({ identity, room }), { identity, room }, "unicode identity and room");
    },
  ],
  [
    "twilio-node token signed with a wrong secret is rejected with 20107",
    () => {
      expectRejected(nodeToken({ secret: "not-the-secret-" + API_SECRET }), 20107, "wrong secret (HS256)");
      expectRejected(nodeToken({ secret: "wrong", algorithm: "HS512" }), 20107, "wrong secret (HS512)");
    },
  ],
  [
    "tokens from an unknown key or another account are rejected with 20103",
    () => {
      expectRejected(nodeToken({ keySid: UNKNOWN_KEY }), 20103, "unknown API key SID");
      expectRejected(nodeToken({ accountSid: OTHER_ACCOUNT }), 20103, "sub naming another account");
    },
  ],
  [
    "expired tokens are rejected with 20104",
    () => {
      // twilio-node cannot take a ttl in the past: mint with its clock two
      // hours behind, as a token server would have an hour after minting.
      const old = withClockShifted(7200, () => nodeToken({ identity: "heidi", room: "standup", ttl: 3600 }));
      check(jwt.decode(old).exp < now() - 3000, "the clock-shifted twilio-node token should be expired", jwt.decode(old));
      expectRejected(old, 20104, "twilio-node token minted 2 h ago with ttl 1 h");
      // The same shape signed by jsonwebtoken directly with an old iat.
      const iat = now() - 7200;
      const crafted = jwt.sign(
        { jti: `${API_KEY}-${iat}`, grants: { identity: "heidi", video: { room: "standup" } }, iat },
        API_SECRET,
        { header: { cty: "twilio-fpa;v=1", typ: "JWT" }, algorithm: "HS256", issuer: API_KEY, subject: ACCOUNT_SID, expiresIn: 3600 },
      );
      checkEqual(jwt.decode(crafted).exp, iat + 3600, "crafted exp");
      expectRejected(crafted, 20104, "jsonwebtoken token with exp an hour ago");
    },
  ],
  [
    "Salon's token has twilio-node's header, payload keys and order, grants, jti and ttl",
    () => {
      const s = salonToken("--identity", "alice", "--room", "standup", "--ttl", "600");
      const n = nodeToken({ identity: "alice", room: "standup", ttl: 600 });
      const ours = compareShapes(s, n, 600, "identity + room, ttl 600");
      checkEqual(ours.header, { alg: "HS256", typ: "JWT", cty: "twilio-fpa;v=1" }, "Salon's header");
      checkEqual(ours.payload.grants, { identity: "alice", video: { room: "standup" } }, "Salon's grants");
      const s2 = salonToken("--identity", "bob", "--ttl", "3600");
      compareShapes(s2, nodeToken({ identity: "bob" }), 3600, "no room, default ttl");
    },
  ],
  [
    "Salon's tokens verify with jsonwebtoken.verify (HS256, HS384, HS512) and in Salon",
    () => {
      for (const algorithm of ["HS256", "HS384", "HS512"]) {
        const token = salonToken("--identity", "ivan", "--room", "standup", "--ttl", "900", "--algorithm", algorithm);
        let claims;
        try {
          claims = jwt.verify(token, API_SECRET, { algorithms: [algorithm], issuer: API_KEY, subject: ACCOUNT_SID });
        } catch (e) {
          check(false, `jsonwebtoken.verify should accept Salon's ${algorithm} token: ${e.message}`, token);
        }
        checkEqual(claims.grants, { identity: "ivan", video: { room: "standup" } }, `${algorithm} verified grants`);
        let refused = false;
        try {
          jwt.verify(token, "wrong-secret", { algorithms: [algorithm] });
        } catch {
          refused = true;
        }
        check(refused, `jsonwebtoken.verify must refuse Salon's ${algorithm} token with a wrong secret`);
        expectValid(token, { identity: "ivan", room: "standup", algorithm }, `Salon ${algorithm} token in Salon`);
      }
    },
  ],
  [
    "Salon mints byte for byte the token twilio-node mints in the same second",
    () => {
      const identity = `Zoë "Z" O'Brien/🎥 <&>`;
      const room = "Salle de réunion #1 — 会议";
      for (let attempt = 1; ; attempt++) {
        const s = salonToken("--identity", identity, "--room", room, "--ttl", "1200");
        const n = nodeToken({ identity, room, ttl: 1200 });
        if (jwt.decode(s).iat !== jwt.decode(n).iat && attempt < 5) {
          continue; // the second turned between the two mints
        }
        checkEqual(rawParts(s).header, rawParts(n).header, "header JSON text");
        checkEqual(rawParts(s).payload, rawParts(n).payload, "payload JSON text");
        checkEqual(s, n, "whole token");
        break;
      }
    },
  ],
]);

async function twilioVersion() {
  const { createRequire } = await import("node:module");
  return createRequire(import.meta.url)("twilio/package.json").version;
}
