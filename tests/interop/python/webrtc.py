"""A participant on an independent WebRTC stack, aiortc, written from
docs/protocol.md alone: it joins a Salon room over the signaling protocol,
publishes audio, video and a data track, subscribes to everyone else's
tracks, and checks that their media and messages arrive.

It follows the document's rules, and checks the server keeps its side:
one bundled transport (bundle policy max-bundle), a data channel in the
first offer, sendonly m-lines for what it publishes and recvonly ones for
what it receives (idle ones made inactive and reused), offers with
increasing revisions and at most one outstanding, a ping every few
seconds, and an answer whose every bundled m-line carries the server's
candidates.

Run by crates/salon/tests/aiortc.rs, which puts a salon-client (Rust)
participant in the same room. The conversation with that test:

  stdout  one JSON object per line: {"event": "joined"}, then
          {"event": "received", ...} once enough of the other participant's
          media and messages arrived, then {"event": "left", ...} at the end
  stdin   a line "leave" (or end of input): send `leave` and exit

Environment: SALON_URL, SALON_ACCOUNT_SID, SALON_API_KEY, SALON_API_SECRET
(tokens are minted with twilio-python, as an application would), SALON_ROOM,
and optionally AIORTC_IDENTITY (default "aiortc"), AIORTC_WANT_PACKETS
(RTP packets wanted per received audio or video track, default 100),
AIORTC_WANT_MESSAGES (data messages wanted per data track, default 3),
AIORTC_TIMEOUT (seconds to wait for them, default 60).

Exit status: 0 when everything was seen and the session ended with
`disconnected {reason: left}`; 1 with a message on stderr otherwise.
"""

import asyncio
import json
import os
import sys
import threading
import time

import aiohttp
import aioice.ice
import av
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import AudioStreamTrack
from aiortc.rtcconfiguration import RTCBundlePolicy
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant

from common import CheckFailed, check, check_equal, env

# aioice leaves 127.0.0.1 out of its host candidates. The test runs on
# loopback only (the server's candidate is 127.0.0.1): give it exactly that,
# so no packet of the test leaves loopback whatever interfaces the machine has.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []

PING_INTERVAL = 5.0
ANSWER_TIMEOUT = 15.0


def emit(event, **fields):
    """One line of the conversation with the Rust test."""
    print(json.dumps({"event": event, **fields}), flush=True)


def log(message):
    print(f"aiortc: {message}", file=sys.stderr, flush=True)


class TestPattern(VideoStreamTrack):
    """320x240 frames whose brightness changes every frame, so each one
    encodes to something (a still image would shrink to nothing)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=320, height=240, format="yuv420p")
        level = (self.count * 7) % 200 + 16
        for index, plane in enumerate(frame.planes):
            value = level if index == 0 else 128
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        self.count += 1
        return frame


class Participant:
    """One participant: the signaling socket, the peer connection, and the
    protocol's bookkeeping (revisions, pending changes, mids and tracks)."""

    def __init__(self, socket):
        self.socket = socket
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.revision = 0
        self.outstanding = None  # the revision of the offer awaiting its answer
        self.publish = []  # declarations for the next offer
        self.subscribe = []
        self.wanted = []  # (track sid, kind) to receive, not yet declared
        self.receivers = {}  # track sid -> transceiver
        self.idle = []  # transceivers free for reuse (made inactive)
        self.kinds = {}  # track sid -> kind
        self.published = {}  # mid or label -> our track sid
        self.data_in = {}  # track sid -> messages received
        self.channel = None
        self.ended = None  # the `disconnected` message
        self.answers = []  # every answer's SDP

        @self.pc.on("datachannel")
        def on_datachannel(channel):
            # The server opens one channel per subscribed data track,
            # labelled with the track's SID.
            self.data_in.setdefault(channel.label, [])

            @channel.on("message")
            def on_message(message):
                self.data_in[channel.label].append(message)

    async def send(self, message):
        await self.socket.send_str(json.dumps(message))

    # ---- the first offer ----------------------------------------------------

    async def start(self):
        # The first offer carries a sending m-line per track to publish and
        # a data channel (the protocol's rule). The transceivers come first:
        # aiortc bundles a data channel created before any transceiver onto
        # a transport of its own making, then closes that very transport
        # when it applies the answer (docs/protocol.md, "aiortc").
        audio = self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        video = self.pc.addTransceiver(TestPattern(), direction="sendonly")
        self.channel = self.pc.createDataChannel("chat")
        self.publish = [(audio, "microphone", "audio"), (video, "camera", "video")]

        @self.channel.on("open")
        def on_open():
            asyncio.ensure_future(self.send({"type": "publish_data", "name": "chat", "label": "chat"}))

        await self.offer()

    # ---- offers and answers -------------------------------------------------

    async def offer(self):
        """Make the next offer when none is outstanding and something changed."""
        if self.outstanding is not None:
            return
        for sid, kind in self.wanted:
            reuse = next((t for t in self.idle if t.kind == kind), None)
            if reuse is not None:
                self.idle.remove(reuse)
                reuse.direction = "recvonly"
                transceiver = reuse
            else:
                transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            self.receivers[sid] = transceiver
            self.subscribe.append((transceiver, sid))
        self.wanted = []
        if not self.publish and not self.subscribe and self.revision > 0:
            return
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        self.revision += 1
        self.outstanding = self.revision
        message = {
            "type": "offer",
            "revision": self.revision,
            # aiortc gathers before setLocalDescription returns: the SDP
            # holds all of our candidates (the server does not trickle).
            "sdp": self.pc.localDescription.sdp,
            "publish": [{"mid": t.mid, "name": name, "kind": kind} for t, name, kind in self.publish],
            "subscribe": [{"mid": t.mid, "track": sid} for t, sid in self.subscribe],
        }
        self.publish, self.subscribe = [], []
        self.offer_sent_at = time.monotonic()
        await self.send(message)

    async def on_answer(self, message):
        check_equal(message["revision"], self.outstanding, "the answer's revision")
        sdp = message["sdp"]
        self.answers.append(sdp)
        check_answer(sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        for p in message["published"]:
            self.published[p["mid"]] = p["track"]["sid"]
        self.outstanding = None
        await self.offer()

    # ---- the server's messages ----------------------------------------------

    async def on_message(self, message):
        kind = message.get("type")
        if kind == "answer":
            await self.on_answer(message)
        elif kind == "subscribed":
            track = message["track"]
            self.kinds[track["sid"]] = track["kind"]
            if track["kind"] in ("audio", "video"):
                self.wanted.append((track["sid"], track["kind"]))
                await self.offer()
            else:
                self.data_in.setdefault(track["sid"], [])
        elif kind == "unsubscribed":
            self.release(message["track"])
            await self.offer()
        elif kind == "participant_disconnected":
            # Leaving ends the subscriptions to the leaver's tracks.
            for sid in list(self.receivers):
                self.release(sid)
            await self.offer()
        elif kind == "published":
            self.published[message["published"]["mid"]] = message["published"]["track"]["sid"]
        elif kind == "error":
            if message.get("revision") is not None and 53400 <= message["code"] < 53500:
                raise CheckFailed(f"offer {message['revision']} refused: {message}")
            raise CheckFailed(f"the server reported an error: {message}")
        elif kind == "disconnected":
            self.ended = message
        # Other types (participant_connected, track_published, pong, …) need
        # nothing here; types this script does not know are skipped.

    def release(self, sid):
        transceiver = self.receivers.pop(sid, None)
        if transceiver is not None:
            # Idle until a later subscription of the same kind reuses it.
            transceiver.direction = "inactive"
            self.idle.append(transceiver)

    # ---- what arrived -------------------------------------------------------

    async def received(self):
        """RTP packets per subscribed audio/video track, messages per data track."""
        packets = {}
        for sid, transceiver in self.receivers.items():
            stats = await transceiver.receiver.getStats()
            packets[sid] = sum(s.packetsReceived for s in stats.values() if s.type == "inbound-rtp")
        messages = {sid: len(m) for sid, m in self.data_in.items()}
        return packets, messages


def check_answer(sdp):
    """What docs/protocol.md says the server's answer contains."""
    sections = sdp.split("\r\nm=")[1:]
    check(sections, "the answer has m-lines", sdp)
    check("a=ice-lite" in sdp.split("\r\nm=")[0], "the answer says a=ice-lite", sdp)
    check("trickle" not in sdp, "the answer has no a=ice-options:trickle", sdp)
    for section in sections:
        if section.split(" ")[1] == "0":
            continue
        check("\r\na=candidate:" in section, "every bundled m-line has the server's candidates", section)
        check("\r\na=end-of-candidates" in section, "every bundled m-line has a=end-of-candidates", section)
        check("\r\na=setup:passive" in section, "the server is the DTLS server (a=setup:passive)", section)
        if not section.startswith("application"):
            check("\r\na=rtcp-mux" in section, "audio and video use rtcp-mux", section)


async def session(url, token, room, want_packets, want_messages, timeout):
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, max_msg_size=2 * 65536) as socket:
            await socket.send_str(json.dumps({"type": "join", "version": 1, "token": token, "room": room, "client": "aiortc interop"}))
            joined = json.loads((await socket.receive(timeout=10)).data)
            check_equal(joined.get("type"), "joined", "the answer to join")
            me = Participant(socket)
            emit("joined", participant=joined["participant"]["sid"], others=[p["identity"] for p in joined["participants"]])

            inbox = asyncio.Queue()

            async def read():
                async for frame in socket:
                    if frame.type == aiohttp.WSMsgType.TEXT:
                        await inbox.put(json.loads(frame.data))
                await inbox.put(None)

            reader = asyncio.ensure_future(read())
            leave = leave_requested()
            await me.start()

            deadline = time.monotonic() + timeout
            next_ping = time.monotonic() + PING_INTERVAL
            reported = False
            leave_asked = False
            ping_id = 0
            try:
                while me.ended is None:
                    now = time.monotonic()
                    if now >= next_ping:
                        ping_id += 1
                        await me.send({"type": "ping", "id": ping_id})
                        next_ping = now + PING_INTERVAL
                    if me.outstanding is not None and now - me.offer_sent_at > ANSWER_TIMEOUT:
                        raise CheckFailed(f"no answer to offer {me.outstanding} within {ANSWER_TIMEOUT} s")
                    if me.channel is not None and me.channel.readyState == "open" and "chat" in me.published:
                        me.channel.send(f"hello from aiortc at {now:.2f}")
                    if not reported:
                        packets, messages = await me.received()
                        enough = (
                            len(packets) >= 2
                            and all(n >= want_packets for n in packets.values())
                            and messages
                            and all(n >= want_messages for n in messages.values())
                        )
                        if enough:
                            kinds = {sid: me.kinds.get(sid) for sid in list(packets) + list(messages)}
                            emit("received", packets=packets, messages=messages, kinds=kinds, published=me.published, answers=len(me.answers))
                            reported = True
                        elif now > deadline:
                            raise CheckFailed(
                                f"not enough arrived within {timeout} s: RTP packets per track {packets} "
                                f"(want {want_packets} each, for an audio and a video track), "
                                f"data messages per track {messages} (want {want_messages})"
                            )
                    if leave.is_set() and not leave_asked:
                        leave_asked = True
                        await me.send({"type": "leave"})
                    try:
                        message = await asyncio.wait_for(inbox.get(), timeout=0.25)
                    except asyncio.TimeoutError:
                        continue
                    if message is None:
                        raise CheckFailed("the server closed the socket without `disconnected`")
                    await me.on_message(message)
            finally:
                reader.cancel()
                await me.pc.close()
            check(reported, "everything arrived before the session ended", me.ended)
            check_equal(me.ended.get("reason"), "left", "the reason in `disconnected`")
            emit("left", published=me.published)


def leave_requested():
    """An event set when a line (or the end of input) arrives on stdin. A
    daemon thread reads it, so a script that ends first does not wait."""
    loop = asyncio.get_running_loop()
    event = asyncio.Event()

    def wait():
        sys.stdin.readline()
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop is gone: the script ended first
            pass

    threading.Thread(target=wait, daemon=True).start()
    return event


def main():
    base = env("SALON_URL").rstrip("/")
    url = base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/v1/signaling"
    room = env("SALON_ROOM")
    identity = os.environ.get("AIORTC_IDENTITY", "aiortc")
    token = AccessToken(
        env("SALON_ACCOUNT_SID"),
        env("SALON_API_KEY"),
        env("SALON_API_SECRET"),
        identity=identity,
        ttl=600,
    )
    token.add_grant(VideoGrant(room=room))
    want_packets = int(os.environ.get("AIORTC_WANT_PACKETS", "100"))
    want_messages = int(os.environ.get("AIORTC_WANT_MESSAGES", "3"))
    timeout = float(os.environ.get("AIORTC_TIMEOUT", "60"))
    try:
        asyncio.run(session(url, token.to_jwt(), room, want_packets, want_messages, timeout))
    except CheckFailed as e:
        log(f"FAIL: {e}")
        sys.exit(1)
    log("passed")


if __name__ == "__main__":
    main()
