"""Access tokens between twilio-python and Salon, both ways: tokens minted by
twilio-python's AccessToken + VideoGrant (which write `nbf` and no `iat`)
verify in Salon (`salon token inspect`), bad ones are rejected with Twilio's
codes, and tokens Salon mints (`salon token create`) are read by
twilio-python's `AccessToken.from_jwt` and verified by PyJWT.

Environment: SALON_ACCOUNT_SID, SALON_API_KEY, SALON_API_SECRET, SALON_BIN,
SALON_DATA_DIR (the data directory of a Salon configured with that account and
key)."""

import re
import time
import warnings
from importlib.metadata import version

import jwt  # PyJWT, twilio-python's dependency
from twilio.jwt import JwtDecodeError
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant

from common import CheckFailed, check, check_equal, env, run, salon

# Twilio's API secrets are 32 characters; recent PyJWT warns that this is
# short for HS384/HS512 (and so is "wrong-secret"). The warning is noise here.
warnings.filterwarnings("ignore", message=r"The HMAC key is \d+ bytes long")

ACCOUNT_SID = env("SALON_ACCOUNT_SID")
API_KEY = env("SALON_API_KEY")
API_SECRET = env("SALON_API_SECRET")
env("SALON_BIN")
env("SALON_DATA_DIR")

OTHER_ACCOUNT = "AC" + "e" * 32
UNKNOWN_KEY = "SK" + "e" * 32

UNSET = object()


def now():
    return int(time.time())


def python_token(
    identity="alice",
    room=None,
    ttl=UNSET,
    nbf=UNSET,
    valid_until=None,
    region=None,
    account_sid=ACCOUNT_SID,
    key_sid=API_KEY,
    secret=API_SECRET,
):
    """A token minted by twilio-python, the way the Twilio tutorials do."""
    options = {"identity": identity}
    if ttl is not UNSET:
        options["ttl"] = ttl
    if nbf is not UNSET:
        options["nbf"] = nbf
    if valid_until is not None:
        options["valid_until"] = valid_until
    if region is not None:
        options["region"] = region
    token = AccessToken(account_sid, key_sid, secret, **options)
    token.add_grant(VideoGrant(room=room) if room is not None else VideoGrant())
    return token.to_jwt()


def claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def expect_valid(token, identity, room, what, algorithm="HS256"):
    code, out, err = salon("token", "inspect", token)
    check(
        code == 0 and "verdict: valid" in out,
        f'{what}: salon token inspect should accept the token (exit 0, "verdict: valid"); exit {code}\n{out}{err}',
    )
    check(
        re.search(rf"^\s*identity\s+{re.escape(identity)}$", out, re.M),
        f"{what}: inspect should report identity {identity!r}",
        out,
    )
    room_text = "any room" if room is None else room
    check(
        re.search(rf"^\s*room\s+{re.escape(room_text)}$", out, re.M),
        f"{what}: inspect should report room {room_text!r}",
        out,
    )
    check(
        re.search(rf"^\s*signed by\s+{API_KEY} \({algorithm}\)$", out, re.M),
        f"{what}: inspect should report the key {API_KEY} and {algorithm}",
        out,
    )
    return out


def expect_rejected(token, code, what):
    exit_code, out, err = salon("token", "inspect", token)
    check(
        exit_code == 1 and f"rejected with {code}" in out,
        f"{what}: salon token inspect should reject the token with {code} and exit 1; exit {exit_code}\n{out}{err}",
    )


def salon_token(*args):
    code, out, err = salon("token", "create", *args)
    check(code == 0, f"salon token create {' '.join(args)} failed (exit {code})\n{out}{err}")
    token = out.strip()
    check(re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", token), "salon token create should print only the JWT", out)
    return token


def default_token_verifies():
    token = python_token(identity="alice", room="standup")
    c = claims(token)
    check("iat" not in c, "twilio-python should not write iat (this test relies on it)", c)
    check(isinstance(c.get("nbf"), int), "twilio-python should write nbf by default", c)
    check_equal(c["grants"], {"identity": "alice", "video": {"room": "standup"}}, "twilio-python grants")
    check_equal(c["jti"].split("-")[0], API_KEY, "jti starts with the key SID")
    out = expect_valid(token, "alice", "standup", "default token with a room")
    check(re.search(r"^\s*issued\s+not stated", out, re.M), "inspect should say iat is not stated", out)


def no_room():
    token = python_token(identity="carol")
    check_equal(claims(token)["grants"], {"identity": "carol", "video": {}}, "twilio-python grants without a room")
    expect_valid(token, "carol", None, "no room")


def custom_ttl():
    token = python_token(identity="erin", room="standup", ttl=600)
    c = claims(token)
    check(abs(c["exp"] - now() - 600) <= 5, "twilio-python exp should be now + ttl", c)
    expect_valid(token, "erin", "standup", "ttl 600")
    expect_valid(python_token(identity="erin", ttl=86400), "erin", None, "ttl 86400 (24 h)")
    expect_rejected(python_token(identity="erin", ttl=86400 + 3600), 20104, "ttl 25 h (over Twilio's 24 h limit)")


def no_nbf_no_iat():
    token = python_token(identity="frank", room="standup", nbf=None)
    c = claims(token)
    check("nbf" not in c and "iat" not in c, "nbf=None should leave out nbf (and iat)", c)
    expect_valid(token, "frank", "standup", "no nbf, no iat")


def explicit_times():
    expect_valid(
        python_token(identity="grace", nbf=now() - 60, valid_until=now() + 900), "grace", None, "nbf and valid_until"
    )
    expect_valid(python_token(identity="grace", nbf=now() + 10), "grace", None, "nbf 10 s ahead (clock skew)")
    expect_rejected(
        python_token(identity="grace", nbf=now() + 3600, valid_until=now() + 7200), 20105, "nbf in an hour"
    )


def region_header():
    token = python_token(identity="heidi", room="standup", region="ie1")
    check_equal(jwt.get_unverified_header(token).get("twr"), "ie1", "twilio-python twr header")
    expect_valid(token, "heidi", "standup", "twr region header")


def unicode_names():
    identity = "Zoë \"Z\" O'Brien/🎥 <&>"
    room = "Salle de réunion #1 — 会议"
    expect_valid(python_token(identity=identity, room=room), identity, room, "unicode identity and room")


def wrong_secret():
    expect_rejected(python_token(secret="not-the-secret-" + API_SECRET), 20107, "wrong secret")


def unknown_issuer():
    expect_rejected(python_token(key_sid=UNKNOWN_KEY), 20103, "unknown API key SID")
    expect_rejected(python_token(account_sid=OTHER_ACCOUNT), 20103, "sub naming another account")


def expired():
    expect_rejected(python_token(identity="ivan", nbf=None, valid_until=now() - 3600), 20104, "exp an hour ago")
    expect_rejected(
        python_token(identity="ivan", nbf=now() - 7200, valid_until=now() - 3600),
        20104,
        "nbf 2 h ago, exp 1 h ago",
    )


def salon_token_reads_in_python():
    token = salon_token("--identity", "judy", "--room", "standup", "--ttl", "600")
    header = jwt.get_unverified_header(token)
    check_equal(header, {"alg": "HS256", "typ": "JWT", "cty": "twilio-fpa;v=1"}, "Salon's header")
    theirs = jwt.get_unverified_header(python_token(identity="judy", room="standup"))
    check_equal(header, theirs, "Salon's header against twilio-python's")
    decoded = AccessToken.from_jwt(token, API_SECRET)
    payload = decoded.payload
    check_equal(payload["grants"], {"identity": "judy", "video": {"room": "standup"}}, "grants read by from_jwt")
    check_equal(
        payload["grants"], claims(python_token(identity="judy", room="standup"))["grants"], "grants like twilio-python's"
    )
    check_equal(list(claims(token)), ["jti", "grants", "iat", "exp", "iss", "sub"], "payload keys of Salon's token")
    check_equal(payload["iss"], API_KEY, "iss")
    check_equal(payload["sub"], ACCOUNT_SID, "sub")
    check_equal(payload["jti"], f"{API_KEY}-{payload['iat']}", "jti is <iss>-<iat>")
    check_equal(payload["exp"] - payload["iat"], 600, "exp - iat is the ttl")
    try:
        AccessToken.from_jwt(token, "wrong-secret")
    except JwtDecodeError:
        pass
    else:
        raise CheckFailed("AccessToken.from_jwt must refuse Salon's token with a wrong secret")


def salon_token_verifies_with_pyjwt():
    for algorithm in ("HS256", "HS384", "HS512"):
        token = salon_token("--identity", "ken", "--ttl", "900", "--algorithm", algorithm)
        try:
            c = jwt.decode(
                token,
                API_SECRET,
                algorithms=[algorithm],
                issuer=API_KEY,
                options={"require": ["exp", "iat", "iss", "sub", "jti"]},
            )
        except jwt.PyJWTError as e:
            raise CheckFailed(f"PyJWT should verify Salon's {algorithm} token: {e!r}") from e
        check_equal(c["sub"], ACCOUNT_SID, f"{algorithm} sub")
        check_equal(c["grants"], {"identity": "ken", "video": {}}, f"{algorithm} grants without a room")
        try:
            jwt.decode(token, "wrong-secret", algorithms=[algorithm])
        except jwt.InvalidSignatureError:
            pass
        else:
            raise CheckFailed(f"PyJWT must refuse Salon's {algorithm} token with a wrong secret")


run(
    f"python tokens (twilio-python {version('twilio')}, PyJWT {version('PyJWT')})",
    [
        ("twilio-python default token (nbf, no iat) with a room verifies in Salon", default_token_verifies),
        ("twilio-python token without a room verifies for any room", no_room),
        ("twilio-python token with a custom ttl verifies, and a 24 h ttl is the limit", custom_ttl),
        ("twilio-python token with neither nbf nor iat verifies", no_nbf_no_iat),
        ("twilio-python nbf/valid_until: valid window verifies, skew tolerated, future rejected with 20105", explicit_times),
        ("twilio-python token with a region (twr header) verifies", region_header),
        ("identities and rooms with spaces, quotes and non-ASCII characters survive", unicode_names),
        ("twilio-python token signed with a wrong secret is rejected with 20107", wrong_secret),
        ("tokens from an unknown key or another account are rejected with 20103", unknown_issuer),
        ("expired twilio-python tokens (valid_until in the past) are rejected with 20104", expired),
        ("Salon's token reads in twilio-python's AccessToken.from_jwt, grants as twilio-python's", salon_token_reads_in_python),
        ("Salon's tokens verify with PyJWT (HS256, HS384, HS512)", salon_token_verifies_with_pyjwt),
    ],
)
