"""Twilio's Network Traversal Service through twilio-python, pointed at
Salon by overriding the api domain's base URL:

    client = Client(api_key, api_secret, account_sid)
    client.api.base_url = SALON_URL
    token = client.tokens.create(ttl=600)

The ICE servers it returns are then used the way a browser would: a TURN
Allocate over UDP with the long-term credential mechanism, written here
from RFC 8489/8656 (independently of Salon's own TURN client).

Environment: SALON_URL, SALON_ACCOUNT_SID, SALON_AUTH_TOKEN, SALON_API_KEY,
SALON_API_SECRET."""

import datetime
import hashlib
import hmac
import os
import socket
import struct
from importlib.metadata import version

from twilio.rest import Client

from common import check, check_equal, env, expect_rest_error, run

SALON_URL = env("SALON_URL").rstrip("/")
ACCOUNT_SID = env("SALON_ACCOUNT_SID")
AUTH_TOKEN = env("SALON_AUTH_TOKEN")
API_KEY = env("SALON_API_KEY")
API_SECRET = env("SALON_API_SECRET")

COOKIE = 0x2112A442


def salon_client(username, password, account_sid=None):
    client = Client(username, password, account_sid)
    client.api.base_url = SALON_URL
    return client


client = salon_client(API_KEY, API_SECRET, ACCOUNT_SID)
state = {}


def stun_message(kind, tid, attrs, key=None):
    body = b"".join(struct.pack("!HH", t, len(v)) + v + b"\0" * (-len(v) % 4) for t, v in attrs)
    if key is not None:
        head = struct.pack("!HHI", kind, len(body) + 24, COOKIE) + tid
        mac = hmac.new(key, head + body, hashlib.sha1).digest()
        body += struct.pack("!HH", 0x0008, 20) + mac
    return struct.pack("!HHI", kind, len(body), COOKIE) + tid + body


def stun_attrs(data):
    attrs, at = {}, 20
    while at + 4 <= len(data):
        t, n = struct.unpack("!HH", data[at : at + 4])
        attrs.setdefault(t, data[at + 4 : at + 4 + n])
        at += 4 + n + (-n % 4)
    return attrs


def turn_allocate(url, username, password):
    """Allocate through `url` (turn:host:port?transport=udp); the relayed address."""
    host, port = url.split(":", 1)[1].split("?")[0].rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(5)
    transport = (0x0019, bytes([17, 0, 0, 0]))
    sock.sendto(stun_message(0x0003, os.urandom(12), [transport]), (host, int(port)))
    challenge = sock.recv(2048)
    check_equal(struct.unpack("!H", challenge[:2])[0], 0x0113, "the first Allocate is challenged (401)")
    attrs = stun_attrs(challenge)
    realm, nonce = attrs[0x0014], attrs[0x0015]
    key = hashlib.md5(username.encode() + b":" + realm + b":" + password.encode()).digest()
    request = stun_message(
        0x0003,
        os.urandom(12),
        [transport, (0x0006, username.encode()), (0x0014, realm), (0x0015, nonce)],
        key,
    )
    sock.sendto(request, (host, int(port)))
    answer = sock.recv(2048)
    kind = struct.unpack("!H", answer[:2])[0]
    check(kind == 0x0103, f"the signed Allocate succeeds (got message type {kind:#06x})", stun_attrs(answer).get(0x0009))
    relayed = stun_attrs(answer)[0x0016]
    xport = struct.unpack("!H", relayed[2:4])[0] ^ (COOKIE >> 16)
    ip = bytes(a ^ b for a, b in zip(relayed[4:8], struct.pack("!I", COOKIE)))
    return socket.inet_ntoa(ip), xport


def create_token():
    token = client.tokens.create(ttl=600)
    check_equal(token.account_sid, ACCOUNT_SID, "account_sid")
    check_equal(token.ttl, "600", "ttl")
    check(isinstance(token.date_created, datetime.datetime), "date_created is a date", token.date_created)
    check(token.username and token.password, "username and password", token)
    urls = [s["urls"] for s in token.ice_servers]
    check(any(u.startswith("stun:") for u in urls), "a STUN server", urls)
    check(any(u.startswith("turn:") and u.endswith("transport=udp") for u in urls), "TURN over UDP", urls)
    check(any(u.startswith("turn:") and u.endswith("transport=tcp") for u in urls), "TURN over TCP", urls)
    for server in token.ice_servers:
        check_equal(server["url"], server["urls"], "url and urls")
        if server["urls"].startswith("turn"):
            check_equal((server["username"], server["credential"]), (token.username, token.password), "credentials")
    state["token"] = token


def allocate():
    token = state["token"]
    url = next(s["urls"] for s in token.ice_servers if s["urls"].endswith("transport=udp"))
    ip, port = turn_allocate(url, token.username, token.password)
    check(port > 0, "a relayed port", (ip, port))


def default_ttl_and_account_auth():
    token = salon_client(ACCOUNT_SID, AUTH_TOKEN).tokens.create()
    check_equal(token.ttl, "86400", "the default ttl")


def errors():
    expect_rest_error(lambda: client.tokens.create(ttl=0), 20001, 400, "ttl=0")
    expect_rest_error(lambda: salon_client(API_KEY, "wrong", ACCOUNT_SID).tokens.create(), 20003, 401, "a wrong secret")


run(
    f"python nts (twilio-python {version('twilio')})",
    [
        ("client.tokens.create(ttl=600) answers like Twilio", create_token),
        ("its TURN credentials allocate over UDP", allocate),
        ("the default ttl is 24 h; AccountSid:AuthToken works", default_ttl_and_account_auth),
        ("a bad ttl and a wrong secret fail with Twilio's codes", errors),
    ],
)
