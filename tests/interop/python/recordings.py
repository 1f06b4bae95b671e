"""Recordings, recording rules and compositions through twilio-python,
pointed at Salon (client.video.base_url = SALON_URL), as an application uses
them:

- a group room created with record_participants_on_connect=False, then
  rules set during the room with rooms(sid).recording_rules.update(rules=…):
  first audio only, then everything; each change starts (and stops) the
  right tracks' recordings;
- two aiortc participants (webrtc.py beside this script: real VP8 and Opus)
  exchange media; the recordings become `completed`; list (grouping_sid,
  media_type, status), fetch, rooms(sid).recordings;
- media downloads as Twilio's docs show it: client.request("GET",
  links["media"]) answers 302 with a JSON body whose redirect_to needs no
  credentials, and with allow_redirects=True the file itself comes;
- a composition (compositions.create, webm, one source) completes, lists,
  downloads, deletes.

Environment: SALON_URL, SALON_ACCOUNT_SID, SALON_AUTH_TOKEN, SALON_API_KEY,
SALON_API_SECRET."""

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from importlib.metadata import version

from twilio.rest import Client

from common import check, check_equal, env, expect_rest_error, run

SALON_URL = env("SALON_URL").rstrip("/")
ACCOUNT_SID = env("SALON_ACCOUNT_SID")
API_KEY = env("SALON_API_KEY")
API_SECRET = env("SALON_API_SECRET")
env("SALON_AUTH_TOKEN")

HERE = os.path.dirname(os.path.abspath(__file__))

client = Client(API_KEY, API_SECRET, ACCOUNT_SID)
client.video.base_url = SALON_URL
video = client.video.v1

RUN = f"py-rec-{int(time.time() * 1000):x}-{os.getpid()}"
IDENTITIES = [f"{RUN}-a", f"{RUN}-b"]

state = {}


def eventually(fn, what, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        last = fn()
        if last:
            return last
        check(time.monotonic() < deadline, f"timed out waiting for {what}", last)
        time.sleep(0.25)


class Participant:
    """An aiortc participant (webrtc.py) in `room`, until told to leave."""

    def __init__(self, room, identity):
        self.identity = identity
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "webrtc.py")],
            env={
                **os.environ,
                "SALON_ROOM": room,
                "AIORTC_IDENTITY": identity,
                "AIORTC_WANT_PACKETS": "150",
                "AIORTC_TIMEOUT": "60",
            },
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events = []
        self.received = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            event = json.loads(line)
            self.events.append(event["event"])
            if event["event"] == "received":
                self.received.set()
        self.received.set()

    def wait_received(self):
        self.received.wait(90)
        check("received" in self.events, f"{self.identity} received the other's media", self.events)

    def leave(self):
        self.process.stdin.write("leave\n")
        self.process.stdin.flush()
        self.process.stdin.close()
        code = self.process.wait(60)
        check(code == 0, f"{self.identity} exited {code}", self.process.stderr.read())


def download(url):
    """GET `url` without credentials: (status, bytes)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def download_media(media_url, what):
    response = client.request("GET", media_url)
    check_equal(response.status_code, 302, f"{what}: /Media answers a redirect")
    location = json.loads(response.text).get("redirect_to")
    check(isinstance(location, str), f"{what}: the body names redirect_to", response.text)
    status, body = download(location)
    check_equal(status, 200, f"{what}: the signed link serves the file")
    status, _ = download(location.replace("Signature=", "Signature=0"))
    check_equal(status, 403, f"{what}: a tampered link is refused")
    # twilio-python's Response keeps the body as text, so only the status
    # says the file came.
    followed = client.request("GET", media_url, allow_redirects=True)
    check_equal(followed.status_code, 200, f"{what}: allow_redirects=True gets the file")
    return body


def rules_start_the_right_tracks():
    room = video.rooms.create(unique_name=RUN, type="group", record_participants_on_connect=False)
    state["room"] = room
    check_equal(
        video.rooms(room.sid).recording_rules.fetch().rules, [], "no rules without record_participants_on_connect"
    )
    participants = [Participant(RUN, identity) for identity in IDENTITIES]
    state["participants"] = participants
    for p in participants:
        p.wait_received()
    check_equal(video.recordings.list(grouping_sid=[room.sid]), [], "nothing recorded without rules")

    # Audio only: two recordings start.
    updated = video.rooms(room.sid).recording_rules.update(rules=[{"type": "include", "kind": "audio"}])
    check_equal(updated.rules, [{"type": "include", "kind": "audio"}], "the audio rule stored")
    audio = eventually(
        lambda: (lambda l: len(l) == 2 and l)(video.recordings.list(grouping_sid=[room.sid])),
        "two audio recordings",
    )
    check(all(r.type == "audio" for r in audio), "only audio is recorded", [r.type for r in audio])
    time.sleep(2)
    # Everything but the first participant's audio: its recording
    # completes; the two videos start; the other audio goes on.
    video.rooms(room.sid).recording_rules.update(
        rules=[{"type": "include", "all": True}, {"type": "exclude", "publisher": IDENTITIES[0], "kind": "audio"}]
    )
    expected = ["audio completed", "audio processing", "video processing", "video processing"]

    def statuses():
        listed = video.recordings.list(grouping_sid=[room.sid])
        return sorted(f"{r.type} {r.status}" for r in listed)

    eventually(lambda: statuses() == expected, f"the first audio to complete and the rest to record: {expected}")
    time.sleep(2)
    for p in participants:
        p.leave()
    video.rooms(room.sid).update(status="completed")
    recordings = eventually(
        lambda: (
            lambda l: len(l) == 4 and all(r.status != "processing" for r in l) and l
        )(video.recordings.list(grouping_sid=[room.sid])),
        "the recordings to finish",
    )
    state["recordings"] = recordings
    for r in recordings:
        check_equal(r.status, "completed", f"{r.sid} status")
        check_equal(r.codec, "opus" if r.type == "audio" else "VP8", "codec")
        check_equal(r.container_format, "mka" if r.type == "audio" else "mkv", "container_format")
        check_equal(r.grouping_sids["room_sid"], room.sid, "grouping_sids.room_sid")
        check(r.duration >= 1 and r.size > 1000, "duration and size", (r.duration, r.size))
        check_equal(video.recordings(r.sid).fetch().source_sid, r.source_sid, "fetch")
        check_equal(video.rooms(room.sid).recordings(r.sid).fetch().sid, r.sid, "the room's recording")
    check_equal(len(video.rooms(room.sid).recordings.list()), 4, "rooms(sid).recordings.list()")
    check_equal(
        len(video.recordings.list(grouping_sid=[room.sid], media_type="video", status="completed")),
        2,
        "filtered by media_type and status",
    )
    expect_rest_error(
        lambda: video.rooms(room.sid).recording_rules.update(rules=[{"type": "include", "kind": "smell"}]),
        53120,
        400,
        "a rule of an unknown kind",
    )


def media_downloads():
    for r in state["recordings"]:
        body = download_media(r.links["media"], r.sid)
        check_equal(len(body), r.size, f"{r.sid}: the file has the recording's size")
        check_equal(body[:4], b"\x1a\x45\xdf\xa3", f"{r.sid}: a Matroska file")


def a_composition_completes():
    room = state["room"]
    c = video.compositions.create(
        room_sid=room.sid,
        video_layout={"main": {"max_columns": 1, "max_rows": 1, "video_sources": ["*"]}},
        audio_sources=["*"],
        format="webm",
        resolution="320x240",
    )
    check(c.sid.startswith("CJ"), "composition sid", c.sid)

    def done():
        fetched = video.compositions(c.sid).fetch()
        check(fetched.status != "failed", "the composition failed", fetched.status)
        return fetched.status == "completed" and fetched

    finished = eventually(done, "the composition to complete", 120)
    check_equal(finished.format, "webm", "format")
    check(finished.duration >= 1 and finished.size > 1000, "duration and size", (finished.duration, finished.size))
    check_equal([x.sid for x in video.compositions.list(room_sid=room.sid)], [c.sid], "compositions.list")
    body = download_media(finished.links["media"], c.sid)
    check_equal(len(body), finished.size, "the composition's file has its size")
    check_equal(body[:4], b"\x1a\x45\xdf\xa3", "a WebM file")
    check_equal(video.compositions(c.sid).delete(), True, "delete()")
    expect_rest_error(lambda: video.compositions(c.sid).fetch(), 20404, 404, "a deleted composition")


run(
    f"python recordings (twilio-python {version('twilio')})",
    [
        ("recording rules changed during the room start and stop the right tracks", rules_start_the_right_tracks),
        ("each recording's media downloads through the /Media redirect", media_downloads),
        ("a composition of the room completes, lists, downloads and deletes", a_composition_completes),
    ],
)
