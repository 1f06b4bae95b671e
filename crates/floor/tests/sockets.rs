//! The relay on real loopback sockets, in both modes: participants join,
//! send, receive each other's packets under their own keys, survive noise,
//! and leave.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use salon_floor::control::{self, Join, Message};
use salon_floor::srtp::{Context, IndexEstimator, KeyingMaterial, Profile, RtpHeader, TAG_LEN};
use salon_floor::{Mode, spawn};

struct Peer {
    socket: UdpSocket,
    up: Context,
    down: Context,
    ssrc: u32,
    seq: u16,
}

impl Peer {
    fn join(relay: SocketAddr, room: &str, ssrc: u32) -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let material: Vec<u8> = (0..88).map(|i| (i as u32 * 11 + ssrc) as u8).collect();
        let keys = KeyingMaterial::split(Profile::SALON, &material).unwrap();
        let join = Join::new(ssrc, Profile::SALON, room.as_bytes(), &[ssrc], &material).unwrap();
        let mut buf = [0u8; control::MAX_LEN];
        let n = Message::Join(join).write(&mut buf).unwrap();
        socket.send_to(&buf[..n], relay).unwrap();
        let mut reply = [0u8; 64];
        let (n, _) = socket.recv_from(&mut reply).unwrap();
        assert_eq!(
            Message::parse(&reply[..n]),
            Ok(Message::Accepted { request: ssrc })
        );
        Peer {
            socket,
            up: keys.client(Profile::SALON).unwrap(),
            down: keys.server(Profile::SALON).unwrap(),
            ssrc,
            seq: 1,
        }
    }

    fn send(&mut self, relay: SocketAddr, payload: &[u8]) {
        let mut buf = vec![0u8; 12 + payload.len() + TAG_LEN];
        RtpHeader::write(&mut buf, false, 96, self.seq, 0, self.ssrc).unwrap();
        buf[12..12 + payload.len()].copy_from_slice(payload);
        let n = self
            .up
            .protect(&mut buf, 12 + payload.len(), u64::from(self.seq))
            .unwrap();
        self.seq += 1;
        self.socket.send_to(&buf[..n], relay).unwrap();
    }

    fn receive(&self) -> (u32, Vec<u8>) {
        let mut buf = [0u8; 2048];
        let (n, _) = self
            .socket
            .recv_from(&mut buf)
            .expect("a packet from the relay");
        let header = RtpHeader::parse(&buf[..n]).unwrap();
        let index = IndexEstimator::new().estimate(header.sequence);
        let len = self.down.unprotect(&mut buf[..n], &header, index).unwrap();
        (header.ssrc, buf[header.len..len].to_vec())
    }
}

fn a_meeting_of_three(mode: Mode) {
    let relay = spawn("127.0.0.1:0".parse().unwrap(), mode).unwrap();
    let addr = relay.local_addr();
    let mut peers: Vec<Peer> = (1..=3).map(|i| Peer::join(addr, "room", i)).collect();

    // Noise first: it must not stop anything.
    let noise = UdpSocket::bind("127.0.0.1:0").unwrap();
    for junk in [
        &b""[..],
        b"\x80",
        b"FLR1",
        b"FLR1J\0\0\0\x09\0\x08",
        &[0x80; 300],
        &[0xff; 1500],
    ] {
        noise.send_to(junk, addr).unwrap();
    }

    for round in 0..20u8 {
        for i in 0..peers.len() {
            peers[i].send(addr, &[round; 500]);
            for (j, other) in peers.iter().enumerate() {
                if j != i {
                    assert_eq!(other.receive(), (peers[i].ssrc, vec![round; 500]));
                }
            }
        }
    }

    let mut buf = [0u8; 32];
    let n = Message::Leave { request: 1 }.write(&mut buf).unwrap();
    peers[0].socket.send_to(&buf[..n], addr).unwrap();
    let mut reply = [0u8; 32];
    let (m, _) = peers[0].socket.recv_from(&mut reply).unwrap();
    assert_eq!(
        Message::parse(&reply[..m]),
        Ok(Message::Left { request: 1 })
    );

    let (stats, sockets) = relay.stop().unwrap();
    assert_eq!(stats.rtp_received, 60);
    assert_eq!(stats.rtp_forwarded, 120);
    assert_eq!(stats.joins, 3);
    assert_eq!(stats.leaves, 1);
    assert!(stats.dropped() >= 5, "{stats:?}");
    assert_eq!(sockets.send_errors, 0);
    if mode == Mode::Batched {
        assert!(sockets.send_calls <= 60 + 8, "{sockets:?}: batched sends");
    }
}

#[test]
fn a_meeting_of_three_over_recvfrom_and_sendto() {
    a_meeting_of_three(Mode::Plain);
}

#[cfg(target_os = "linux")]
#[test]
fn a_meeting_of_three_over_recvmmsg_and_sendmmsg() {
    a_meeting_of_three(Mode::Batched);
}

#[test]
fn the_relay_serves_loopback_only() {
    let e = spawn("0.0.0.0:0".parse().unwrap(), Mode::Plain).unwrap_err();
    assert!(e.to_string().contains("not a loopback address"), "{e}");
}
