"""The Rooms REST API through twilio-python, pointed at Salon by overriding
the video domain's base URL:

    client = Client(api_key, api_secret, account_sid)
    client.video.base_url = SALON_URL

(twilio-python's Domain.absolute_url() joins base_url and the resource path;
pages are followed through the absolute next_page_url Salon returns.)

Environment: SALON_URL (Salon's public URL, as it writes it in `url` fields),
SALON_ACCOUNT_SID, SALON_AUTH_TOKEN, SALON_API_KEY, SALON_API_SECRET."""

import datetime
import os
import re
import time
from importlib.metadata import version
from urllib.parse import parse_qs, urlsplit

from twilio.rest import Client

from common import check, check_equal, env, expect_page_error, expect_rest_error, run

SALON_URL = env("SALON_URL").rstrip("/")
ACCOUNT_SID = env("SALON_ACCOUNT_SID")
AUTH_TOKEN = env("SALON_AUTH_TOKEN")
API_KEY = env("SALON_API_KEY")
API_SECRET = env("SALON_API_SECRET")


def salon_client(username, password, account_sid=None):
    """A twilio-python client whose video domain is Salon."""
    client = Client(username, password, account_sid)
    client.video.base_url = SALON_URL
    return client


client = salon_client(API_KEY, API_SECRET, ACCOUNT_SID)
rooms = client.video.v1.rooms

# Every request this client sends (method and URL), to see the pages it follows.
requests_sent = []
_send = client.request


def _recording_request(method, uri, params=None, *args, **kwargs):
    query = ""
    if params:
        query = "?" + "&".join(f"{k}={v}" for k, v in params.items())
    requests_sent.append(f"{method.upper()} {uri}{query}")
    return _send(method, uri, params, *args, **kwargs)


client.request = _recording_request

# Names unique to this run, so the script can run again against the same server.
RUN = f"py-{int(time.time() * 1000):x}-{os.getpid()}"
STATUS_CALLBACK = "https://app.example.com/video/status?run=" + RUN
MISSING_ROOM = "RM" + "f" * 32
MISSING_PARTICIPANT = "PA" + "f" * 32


def is_datetime(value):
    return isinstance(value, datetime.datetime) and value.tzinfo is not None


def check_room(room, what):
    check(re.fullmatch(r"RM[0-9a-f]{32}", room.sid or ""), f"{what}: sid should be RM + 32 hex digits", room.sid)
    check_equal(room.account_sid, ACCOUNT_SID, f"{what}: account_sid")
    check_equal(room.url, f"{SALON_URL}/v1/Rooms/{room.sid}", f"{what}: url (absolute, under SALON_URL)")
    check_equal(
        (room.links or {}).get("participants"),
        f"{SALON_URL}/v1/Rooms/{room.sid}/Participants",
        f"{what}: links.participants",
    )
    check(is_datetime(room.date_created), f"{what}: date_created should parse as a datetime", room.date_created)
    check(is_datetime(room.date_updated), f"{what}: date_updated should parse as a datetime", room.date_updated)
    age = abs(datetime.datetime.now(datetime.timezone.utc) - room.date_created)
    check(age < datetime.timedelta(minutes=10), f"{what}: date_created should be recent", room.date_created)


state = {}


def create_room():
    unique_name = f"{RUN}-standup"
    room = rooms.create(
        unique_name=unique_name,
        type="group-small",
        max_participants=3,
        empty_room_timeout=7,
        video_codecs=["VP8"],
        status_callback=STATUS_CALLBACK,
    )
    state["created"] = room
    check_room(room, "created room")
    check_equal(room.status, "in-progress", "status")
    check_equal(room.unique_name, unique_name, "unique_name")
    check_equal(room.type, "group-small", "type")
    check_equal(room.max_participants, 3, "max_participants")
    check_equal(room.empty_room_timeout, 7, "empty_room_timeout")
    check_equal(room.video_codecs, ["VP8"], "video_codecs")
    check_equal(room.status_callback, STATUS_CALLBACK, "status_callback")
    check_equal(room.status_callback_method, "POST", "status_callback_method")
    check(room.end_time is None, "end_time should be None while in progress", room.end_time)
    check(room.duration is None, "duration should be None while in progress", room.duration)


def fetch_room():
    created = state["created"]
    by_sid = rooms(created.sid).fetch()
    check_room(by_sid, "fetched by SID")
    check_equal(by_sid.sid, created.sid, "sid fetched by SID")
    check_equal(by_sid.unique_name, created.unique_name, "unique_name fetched by SID")
    check_equal(by_sid.max_participants, 3, "max_participants fetched by SID")
    by_name = rooms(created.unique_name).fetch()
    check_equal(by_name.sid, created.sid, "sid fetched by unique name")
    check_equal(by_name.status, "in-progress", "status fetched by unique name")


def duplicate_name():
    created = state["created"]
    expect_rest_error(lambda: rooms.create(unique_name=created.unique_name), 53113, 400, "duplicate unique name")


def invalid_parameters():
    expect_rest_error(
        lambda: rooms.create(unique_name=f"{RUN}-bad-type", type="small-group"), 53108, 400, "Type small-group"
    )
    expect_rest_error(
        lambda: rooms.create(unique_name=f"{RUN}-too-many", type="group-small", max_participants=99),
        53107,
        400,
        "MaxParticipants 99 for group-small",
    )
    expect_rest_error(
        lambda: rooms.create(unique_name=f"{RUN}-no-timeout", empty_room_timeout=0), 53109, 400, "EmptyRoomTimeout 0"
    )


def missing_room():
    expect_rest_error(lambda: rooms(MISSING_ROOM).fetch(), 20404, 404, f"fetch {MISSING_ROOM}")
    expect_rest_error(lambda: rooms(f"{RUN}-never-created").fetch(), 20404, 404, "fetch an unknown unique name")


def paging():
    paging_rooms = [rooms.create(unique_name=f"{RUN}-page-{i}") for i in range(7)]
    state["paging"] = paging_rooms
    newest_first = [r.sid for r in reversed(paging_rooms)]

    requests_sent.clear()
    listed = rooms.list(status="in-progress", page_size=2, limit=7)
    check_equal([r.sid for r in listed], newest_first, "rooms.list(status='in-progress', page_size=2, limit=7)")
    check_equal(len(requests_sent), 4, f"7 rooms in pages of 2 should take 4 requests ({requests_sent})")
    check(requests_sent[0].startswith(f"GET {SALON_URL}/v1/Rooms?"), "first page from SALON_URL", requests_sent)
    for request in requests_sent[1:]:
        check(
            request.startswith(f"GET {SALON_URL}/v1/Rooms?") and "PageToken=" in request,
            "later pages should be the next_page_url Salon returned",
            requests_sent,
        )
    for room in listed:
        check_room(room, "listed room")

    streamed = [r.sid for r in rooms.stream(status="in-progress", page_size=2, limit=7)]
    check_equal(streamed, newest_first, "rooms.stream(status='in-progress', page_size=2, limit=7)")


def page_urls():
    created = state["created"]
    ours = [created.sid] + [r.sid for r in state["paging"]]
    page = rooms.page(status="in-progress", page_size=2)
    collected = []
    pages = 0
    while page is not None:
        pages += 1
        records = list(page)
        check(len(records) <= 2, "a page should hold at most PageSize rooms", len(records))
        collected += [r.sid for r in records]
        if page.next_page_url:
            check(
                page.next_page_url.startswith(f"{SALON_URL}/v1/Rooms?"),
                "next_page_url should be absolute under SALON_URL",
                page.next_page_url,
            )
            query = parse_qs(urlsplit(page.next_page_url).query)
            check_equal(query.get("Status"), ["in-progress"], "next_page_url repeats Status")
            check_equal(query.get("PageSize"), ["2"], "next_page_url repeats PageSize")
        check(pages <= 100, "paging should end")
        page = page.next_page()
    check(pages >= 4, "8+ rooms in pages of 2 should take at least 4 pages", pages)
    for sid in ours:
        check(sid in collected, f"walking every page should reach room {sid}", collected)
    check_equal(len(set(collected)), len(collected), "no room should appear on two pages")
    check_equal([s for s in collected if s in ours], list(reversed(ours)), "rooms across pages should be newest first")

    every = [r.sid for r in rooms.stream(status="in-progress", page_size=2)]
    check(all(sid in every for sid in ours), "rooms.stream without a limit should reach every room", every)


def filter_by_name():
    room = state["paging"][3]
    check_equal(
        [r.sid for r in rooms.list(unique_name=room.unique_name)],
        [room.sid],
        "rooms.list(unique_name=…) should return that room only",
    )


def complete_room():
    room = state["paging"][0]
    done = rooms(room.sid).update(status="completed")
    check_room(done, "completed room")
    check_equal(done.sid, room.sid, "sid of the completed room")
    check_equal(done.status, "completed", "status after update")
    check(is_datetime(done.end_time), "end_time should be a datetime once completed", done.end_time)
    check(done.end_time >= done.date_created, "end_time should not precede date_created", done.end_time)
    check(isinstance(done.duration, int) and done.duration >= 0, "duration should be whole seconds", done.duration)
    check_equal(rooms(room.sid).fetch().status, "completed", "status fetched after completion")


def completed_listing():
    room = state["paging"][0]
    completed = rooms.list(status="completed", page_size=50)
    check(
        any(r.sid == room.sid and r.status == "completed" for r in completed),
        "rooms.list(status='completed') should include the completed room",
        [r.sid for r in completed],
    )
    in_progress = rooms.list(status="in-progress")
    check(all(r.sid != room.sid for r in in_progress), "the completed room should not be listed in progress")
    expect_rest_error(lambda: rooms(room.unique_name).fetch(), 20404, 404, "fetch a completed room by unique name")
    again = rooms.create(unique_name=room.unique_name)
    check(again.sid != room.sid, "a new room may take the unique name of a completed one", again.sid)
    check_equal(again.status, "in-progress", "status of the room reusing the name")


def participants():
    created = state["created"]
    check_equal(rooms(created.sid).participants.list(), [], "participants of a room nobody joined")
    expect_rest_error(
        lambda: rooms(created.sid).participants(MISSING_PARTICIPANT).fetch(),
        20404,
        404,
        f"fetch participant {MISSING_PARTICIPANT}",
    )
    expect_rest_error(
        lambda: rooms(created.sid).participants("nobody").fetch(),
        20404,
        404,
        "fetch participant by an identity nobody has",
    )
    expect_page_error(lambda: rooms(MISSING_ROOM).participants.list(), 20404, 404, "participants of a missing room")


def wrong_secret():
    created = state["created"]
    wrong = salon_client(API_KEY, "wrong-" + API_SECRET, ACCOUNT_SID)
    expect_page_error(lambda: wrong.video.v1.rooms.list(limit=1), 20003, 401, "list rooms with a wrong secret")
    expect_rest_error(lambda: wrong.video.v1.rooms(created.sid).fetch(), 20003, 401, "fetch with a wrong secret")
    wrong_token = salon_client(ACCOUNT_SID, "wrong-" + AUTH_TOKEN)
    expect_rest_error(lambda: wrong_token.video.v1.rooms.create(), 20003, 401, "create with a wrong auth token")


def account_auth():
    created = state["created"]
    account = salon_client(ACCOUNT_SID, AUTH_TOKEN)
    check_equal(account.video.v1.rooms(created.sid).fetch().sid, created.sid, "room fetched with the auth token")
    room = account.video.v1.rooms.create(unique_name=f"{RUN}-account-auth", type="go")
    check_room(room, "room created with the auth token")
    check_equal(room.type, "go", "type")
    check_equal(room.max_participants, 2, "a go room admits 2")
    done = account.video.v1.rooms(room.sid).update(status="completed")
    check_equal(done.status, "completed", "completed with the auth token")


def clean_up():
    for room in rooms.stream(status="in-progress"):
        if room.unique_name.startswith(RUN):
            rooms(room.sid).update(status="completed")
    left = [r.sid for r in rooms.stream(status="in-progress") if r.unique_name.startswith(RUN)]
    check_equal(left, [], "rooms of this run still in progress")


run(
    f"python rest (twilio-python {version('twilio')})",
    [
        ("create a group-small room with every option", create_room),
        ("fetch the room by SID and by unique name", fetch_room),
        ("a duplicate unique name fails with 53113 / 400", duplicate_name),
        ("invalid parameters fail with Twilio's codes (53108, 53107, 53109)", invalid_parameters),
        ("fetching a room that does not exist fails with 20404 / 404", missing_room),
        ("list and stream follow next_page_url: 7 rooms in pages of 2, newest first", paging),
        ("pages carry absolute page URLs under SALON_URL and repeat the filter", page_urls),
        ("list filtered by unique name", filter_by_name),
        ("complete a room: status completed, end_time and duration set", complete_room),
        ("completed rooms: listed with status completed, not in progress; the name is free again", completed_listing),
        ("participants: an empty list, and 20404 for one that does not exist", participants),
        ("a wrong API secret fails with 20003 / 401", wrong_secret),
        ("AccountSid:AuthToken authentication works too", account_auth),
        ("clean up: complete this run's rooms", clean_up),
    ],
)
