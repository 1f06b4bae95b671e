"""Status callbacks through twilio-python, in two steps the Rust test drives
(crates/salon/tests/status_callbacks.rs):

    python callbacks.py create NAME CALLBACK_URL METHOD
        create a room with status_callback/status_callback_method through
        twilio-python; print the room's SID.
    python callbacks.py validate CAPTURED.json
        check every request a receiver captured with twilio-python's
        RequestValidator, as an app's webhook handler does; check that a
        tampered request fails.

CAPTURED.json is a list of {method, url, params, signature} (see
node/callbacks.mjs).

Environment: SALON_URL, SALON_ACCOUNT_SID, SALON_AUTH_TOKEN, SALON_API_KEY,
SALON_API_SECRET."""

import json
import sys
from importlib.metadata import version

from twilio.request_validator import RequestValidator
from twilio.rest import Client

from common import check, check_equal, env, run

SALON_URL = env("SALON_URL").rstrip("/")
ACCOUNT_SID = env("SALON_ACCOUNT_SID")
AUTH_TOKEN = env("SALON_AUTH_TOKEN")
API_KEY = env("SALON_API_KEY")
API_SECRET = env("SALON_API_SECRET")
TWILIO_VERSION = version("twilio")


def create(name, callback, method):
    client = Client(API_KEY, API_SECRET, ACCOUNT_SID)
    client.video.base_url = SALON_URL

    def scenario():
        room = client.video.v1.rooms.create(
            unique_name=name,
            type="group",
            status_callback=callback,
            status_callback_method=method,
        )
        check_equal(room.status_callback, callback, "status_callback")
        check_equal(room.status_callback_method, method, "status_callback_method")
        print(f"ROOM {room.sid}")

    run(
        f"python callbacks create (twilio-python {TWILIO_VERSION})",
        [(f"create {name} with a {method} status callback", scenario)],
    )


def validate(path):
    with open(path, encoding="utf-8") as f:
        captured = json.load(f)
    validator = RequestValidator(AUTH_TOKEN)

    def every_request():
        check(len(captured) > 0, "nothing was captured")
        for request in captured:
            ok = validator.validate(request["url"], request["params"], request["signature"])
            event = request["params"].get("StatusCallbackEvent") or request["url"]
            check(ok, f"{request['method']} {event}: signature rejected", request)

    def tampered():
        posts = [r for r in captured if r["method"] == "POST"]
        request = posts[0] if posts else captured[0]
        if request["method"] == "GET":
            url, params = request["url"].replace("RoomSid=RM", "RoomSid=RX"), {}
        else:
            url, params = request["url"], {**request["params"], "ParticipantIdentity": "mallory"}
        check(not validator.validate(url, params, request["signature"]), "a changed parameter should fail validation")
        other = RequestValidator("0" * 32)
        check(
            not other.validate(request["url"], request["params"], request["signature"]),
            "another auth token should fail validation",
        )

    run(
        f"python callbacks validate (twilio-python {TWILIO_VERSION})",
        [
            (f"RequestValidator accepts all {len(captured)} captured callbacks", every_request),
            ("a tampered callback is rejected", tampered),
        ],
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "create":
        create(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "validate":
        validate(sys.argv[2])
    else:
        print("usage: callbacks.py create NAME CALLBACK_URL METHOD | validate CAPTURED.json", file=sys.stderr)
        sys.exit(2)
