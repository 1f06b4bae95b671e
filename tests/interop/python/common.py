"""Shared by the twilio-python interop scripts: configuration from the
environment, assertions that stop at the first failure, and a runner for the
`salon` binary."""

import os
import pprint
import subprocess
import sys
import traceback


class CheckFailed(Exception):
    """A failed check: the scripts print it and exit 1."""


def env(name):
    value = os.environ.get(name)
    if not value:
        print(
            f"{name} is not set: see tests/interop/README.md for the variables these scripts read",
            file=sys.stderr,
        )
        sys.exit(2)
    return value


def check(condition, message, got=None):
    if not condition:
        if got is None:
            extra = ""
        elif isinstance(got, str) and "\n" in got:
            extra = "\n  got:\n" + got
        else:
            extra = "\n  got: " + pprint.pformat(got, width=100)
        raise CheckFailed(message + extra)


def check_equal(actual, expected, what):
    if actual != expected:
        raise CheckFailed(
            f"{what}:\n  expected {pprint.pformat(expected, width=100)}\n  got      {pprint.pformat(actual, width=100)}"
        )


def expect_rest_error(call, code, status, what):
    """Run `call()` and check it raises TwilioRestException with Twilio error
    `code` and HTTP `status`."""
    from twilio.base.exceptions import TwilioRestException

    try:
        value = call()
    except TwilioRestException as e:
        check(
            e.code == code and e.status == status,
            f"{what}: expected TwilioRestException code {code} status {status}, "
            f"got code {e.code!r} status {e.status!r} ({e.msg})",
        )
        return e
    except Exception as e:  # noqa: BLE001 - report anything else as a failure
        raise CheckFailed(f"{what}: expected a TwilioRestException, got {e!r}") from e
    raise CheckFailed(f"{what}: expected TwilioRestException {code}/{status}, but the call succeeded: {value!r}")


def expect_page_error(call, code, status, what):
    """Run `call()`, a list/stream/page call, and check it fails with Twilio
    error `code` and HTTP `status`. twilio-python raises a plain
    TwilioException("Unable to fetch page", response) when a page request
    fails (against Twilio too), so the code is read from the response."""
    import json

    from twilio.base.exceptions import TwilioException, TwilioRestException

    try:
        value = call()
    except TwilioRestException as e:
        check(
            e.code == code and e.status == status,
            f"{what}: expected code {code} status {status}, got code {e.code!r} status {e.status!r} ({e.msg})",
        )
        return e
    except TwilioException as e:
        response = e.args[1] if len(e.args) > 1 else None
        check(response is not None and hasattr(response, "status_code"), f"{what}: exception without a response", e)
        try:
            body = json.loads(response.text)
        except ValueError:
            body = None
        check(
            response.status_code == status and isinstance(body, dict) and body.get("code") == code,
            f"{what}: expected code {code} status {status}",
            (response.status_code, response.text),
        )
        check_equal(body.get("status"), status, f"{what}: status in the error body")
        return e
    except Exception as e:  # noqa: BLE001
        raise CheckFailed(f"{what}: expected a TwilioException, got {e!r}") from e
    raise CheckFailed(f"{what}: expected error {code}/{status}, but the call succeeded: {value!r}")


def salon(*args):
    """Run `salon --data-dir $SALON_DATA_DIR <args…>`: (exit code, stdout, stderr)."""
    binary = env("SALON_BIN")
    data_dir = env("SALON_DATA_DIR")
    try:
        result = subprocess.run(
            [binary, "--data-dir", data_dir, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "SALON_LOG": "warn"},
        )
    except OSError as e:
        raise CheckFailed(f"cannot run {binary}: {e}") from e
    return result.returncode, result.stdout, result.stderr


def run(suite, scenarios):
    """Run the scenarios in order; stop at the first failure with a clear
    message and exit status 1; print a one-line summary on success."""
    passed = 0
    for name, body in scenarios:
        try:
            body()
        except CheckFailed as e:
            print(f"FAIL {name}", flush=True)
            print(f"{suite}: FAIL {name}: {e}", file=sys.stderr)
            sys.exit(1)
        except Exception:  # noqa: BLE001
            print(f"FAIL {name}", flush=True)
            print(f"{suite}: FAIL {name}: unexpected error:\n{traceback.format_exc()}", file=sys.stderr)
            sys.exit(1)
        passed += 1
        print(f"ok   {name}", flush=True)
    print(f"{suite}: all {passed} scenarios passed")
