// Shared by the twilio-node interop scripts: configuration from the
// environment, assertions that stop at the first failure, and a runner for
// the `salon` binary.

import { spawnSync } from "node:child_process";
import { isDeepStrictEqual, inspect } from "node:util";

/** A failed check: the scripts print it and exit 1. */
export class CheckFailed extends Error {}

/** The value of a required environment variable. */
export function env(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set: see tests/interop/README.md for the variables these scripts read`);
    process.exit(2);
  }
  return value;
}

/** Throw CheckFailed with `message` (and `detail`, pretty-printed) unless `condition` holds. */
export function check(condition, message, detail) {
  if (!condition) {
    let extra = "";
    if (typeof detail === "string" && detail.includes("\n")) {
      extra = `\n  got:\n${detail}`;
    } else if (detail !== undefined) {
      extra = `\n  got: ${inspect(detail, { depth: 6, breakLength: 100 })}`;
    }
    throw new CheckFailed(message + extra);
  }
}

/** Check `actual` deep-equals `expected`. */
export function checkEqual(actual, expected, what) {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new CheckFailed(
      `${what}:\n  expected ${inspect(expected, { depth: 6 })}\n  got      ${inspect(actual, { depth: 6 })}`,
    );
  }
}

/**
 * Await `promise` and check it fails with a twilio RestException carrying
 * Twilio error `code` and HTTP `status`.
 */
export async function expectRestError(promise, code, status, what) {
  let value;
  try {
    value = await promise;
  } catch (e) {
    check(
      e && e.constructor && e.constructor.name === "RestException",
      `${what}: expected a RestException, got another error`,
      e,
    );
    check(
      e.code === code && e.status === status,
      `${what}: expected RestException code ${code} status ${status}, got code ${e.code} status ${e.status} (${e.message})`,
    );
    check(
      e.moreInfo === `https://www.twilio.com/docs/errors/${code}`,
      `${what}: RestException moreInfo should link Twilio's page for ${code}`,
      e.moreInfo,
    );
    return e;
  }
  throw new CheckFailed(`${what}: expected RestException ${code}/${status}, but the call succeeded`, {
    cause: value,
  });
}

/** Run `salon <args…>` with the configured binary and data directory. */
export function salon(...args) {
  const bin = env("SALON_BIN");
  const dataDir = env("SALON_DATA_DIR");
  const result = spawnSync(bin, ["--data-dir", dataDir, ...args], {
    encoding: "utf8",
    env: { ...process.env, SALON_LOG: "warn" },
    timeout: 60_000,
  });
  if (result.error) {
    throw new CheckFailed(`cannot run ${bin}: ${result.error.message}`);
  }
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Run the scenarios in order; stop at the first failure with a clear message
 * and exit status 1; print a one-line summary on success.
 */
export async function run(suite, scenarios) {
  let passed = 0;
  for (const [name, body] of scenarios) {
    try {
      await body();
      passed += 1;
      console.log(`ok   ${name}`);
    } catch (e) {
      console.log(`FAIL ${name}`);
      if (e instanceof CheckFailed) {
        console.error(`${suite}: FAIL ${name}: ${e.message}`);
      } else {
        console.error(`${suite}: FAIL ${name}: unexpected error:`, e);
      }
      process.exit(1);
    }
  }
  console.log(`${suite}: all ${passed} scenarios passed`);
}
