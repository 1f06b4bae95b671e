//! The client against a scripted signaling server (a WebSocket in the test)
//! whose media side is the bare str0m answerer of `common`: does the client
//! keep the protocol's rules — always offer, one offer at a time, revisions
//! counting up, subscriptions batched into the next offer, pings, data
//! tracks announced once their channel is open — and does it report what the
//! server says with the server's codes?

mod common;

use std::collections::VecDeque;
use std::time::Duration;

use common::Answerer;
use salon_client::{Client, ClientConfig, ClientEvent, DisconnectReason, TrackSpec, codes};
use salon_sid::{ParticipantSid, RoomSid, TrackSid};
use salon_signal::{
    ClientMessage, ParticipantInfo, Published, RoomInfo, ServerMessage, TrackInfo, TrackKind,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);

/// The server side of one signaling connection.
struct Server {
    ws: WebSocketStream<TcpStream>,
    /// Messages read while looking for another one.
    backlog: VecDeque<ClientMessage>,
    pings: u32,
}

impl Server {
    /// Listen, start `Client::connect` against it, and accept its socket.
    async fn accept(
        config: impl FnOnce(String) -> ClientConfig,
    ) -> (
        Server,
        JoinHandle<Result<Client, salon_client::ClientError>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/v1/signaling", listener.local_addr().unwrap());
        let connecting = tokio::spawn(Client::connect(config(url)));
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let server = Server {
            ws,
            backlog: VecDeque::new(),
            pings: 0,
        };
        (server, connecting)
    }

    /// The next socket on `listener` (a client connecting again).
    async fn on(listener: &TcpListener) -> Server {
        let (tcp, _) = listener.accept().await.unwrap();
        Server {
            ws: tokio_tungstenite::accept_async(tcp).await.unwrap(),
            backlog: VecDeque::new(),
            pings: 0,
        }
    }

    async fn send(&mut self, message: ServerMessage) {
        self.ws.send_text(message.to_json()).await;
    }

    /// The next message that satisfies `pred` (pings are counted and
    /// answered; other messages wait in the backlog).
    async fn expect(&mut self, what: &str, pred: impl Fn(&ClientMessage) -> bool) -> ClientMessage {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i).unwrap();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let message = tokio::time::timeout_at(deadline, self.ws.next_message())
                .await
                .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}; backlog {:?}", self.backlog))
                .unwrap_or_else(|| panic!("socket closed while waiting for {what}"));
            if let ClientMessage::Ping { id } = message {
                self.pings += 1;
                self.send(ServerMessage::Pong { id }).await;
                continue;
            }
            if pred(&message) {
                return message;
            }
            self.backlog.push_back(message);
        }
    }

    async fn expect_offer(
        &mut self,
    ) -> (
        u32,
        String,
        Vec<salon_signal::PublishMedia>,
        Vec<salon_signal::SubscribeMedia>,
    ) {
        match self
            .expect("offer", |m| matches!(m, ClientMessage::Offer { .. }))
            .await
        {
            ClientMessage::Offer {
                revision,
                sdp,
                publish,
                subscribe,
            } => (revision, sdp, publish, subscribe),
            _ => unreachable!(),
        }
    }
}

/// A small extension for reading and writing JSON text frames.
trait TextSocket {
    async fn send_text(&mut self, text: String);
    async fn next_message(&mut self) -> Option<ClientMessage>;
}

impl TextSocket for WebSocketStream<TcpStream> {
    async fn send_text(&mut self, text: String) {
        use futures_util::SinkExt;
        self.send(Message::text(text)).await.unwrap();
    }

    async fn next_message(&mut self) -> Option<ClientMessage> {
        use futures_util::StreamExt;
        loop {
            match self.next().await? {
                Ok(Message::Text(text)) => return Some(ClientMessage::parse(&text).unwrap()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}

fn track(name: &str, kind: TrackKind) -> TrackInfo {
    TrackInfo {
        sid: TrackSid::random(),
        name: name.into(),
        kind,
        enabled: true,
        priority: Default::default(),
    }
}

fn joined(me: &ParticipantInfo, others: Vec<ParticipantInfo>) -> ServerMessage {
    ServerMessage::Joined {
        version: 1,
        session: "session-1".into(),
        resumed: false,
        room: RoomInfo {
            sid: RoomSid::random(),
            name: "standup".into(),
            recording: false,
        },
        participant: me.clone(),
        participants: others,
        ice_servers: vec![],
        last_revision: 0,
        session_timeout: None,
        node: None,
        simulcast: false,
    }
}

#[tokio::test]
async fn a_refused_join_fails_with_the_servers_code() {
    let (mut server, connecting) =
        Server::accept(|url| ClientConfig::new(url, "expired-token", "standup")).await;
    let join = server
        .expect("join", |m| matches!(m, ClientMessage::Join { .. }))
        .await;
    assert_eq!(
        join,
        ClientMessage::Join {
            version: 1,
            token: "expired-token".into(),
            room: Some("standup".into()),
            auto_subscribe: true,
            client: Some(format!("salon-client {}", env!("CARGO_PKG_VERSION"))),
        }
    );
    server
        .send(ServerMessage::Error {
            code: 20104,
            message: "Access token expired".into(),
            revision: None,
        })
        .await;
    drop(server);
    let err = connecting.await.unwrap().unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (20104, "Access token expired")
    );
}

#[tokio::test]
async fn a_server_that_never_says_joined_times_out_with_53002() {
    let (_server, connecting) = Server::accept(|url| {
        let mut config = ClientConfig::new(url, "t", "standup");
        config.connect_timeout = Duration::from_millis(300);
        config
    })
    .await;
    let err = connecting.await.unwrap().unwrap_err();
    assert_eq!(err.code, codes::SIGNALING_TIMEOUT);
}

#[tokio::test]
async fn no_server_at_all_is_a_signaling_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/signaling", listener.local_addr().unwrap());
    drop(listener);
    let err = Client::connect(ClientConfig::new(url, "t", "standup"))
        .await
        .unwrap_err();
    assert_eq!(err.code, codes::SIGNALING_ERROR, "{err}");
}

#[tokio::test]
async fn a_session_follows_the_protocol_from_join_to_room_completed() {
    let answerer = Answerer::spawn().await;
    let (mut server, connecting) = Server::accept(|url| {
        let mut config = ClientConfig::new(url, "token", "standup")
            .publish(TrackSpec::audio("mic"))
            .publish(TrackSpec::data("chat"));
        config.ping_interval = Duration::from_millis(100);
        config
    })
    .await;
    server
        .expect("join", |m| matches!(m, ClientMessage::Join { .. }))
        .await;

    let me = ParticipantInfo {
        sid: ParticipantSid::random(),
        identity: "alice".into(),
        tracks: vec![],
    };
    let bob_mic = track("mic", TrackKind::Audio);
    let bob_chat = track("chat", TrackKind::Data);
    let bob = ParticipantInfo {
        sid: ParticipantSid::random(),
        identity: "bob".into(),
        tracks: vec![bob_mic.clone(), bob_chat.clone()],
    };
    server.send(joined(&me, vec![bob.clone()])).await;
    // Auto-subscribe: the existing tracks follow `joined` at once.
    for t in [&bob_mic, &bob_chat] {
        server
            .send(ServerMessage::Subscribed {
                participant: bob.sid,
                track: t.clone(),
            })
            .await;
    }
    let mut client = connecting.await.unwrap().unwrap();
    assert_eq!(client.room().name, "standup");
    assert_eq!(client.participant().identity, "alice");
    assert_eq!(client.participants(), vec![bob.clone()]);

    // Offer 1: the published mic (the data track rides SCTP, not an m-line).
    let (revision, sdp, publish, subscribe) = server.expect_offer().await;
    assert_eq!(revision, 1);
    assert_eq!(publish.len(), 1);
    assert_eq!(
        (publish[0].name.as_str(), publish[0].kind),
        ("mic", TrackKind::Audio)
    );
    assert!(
        subscribe.is_empty(),
        "subscriptions wait for the next offer"
    );
    assert!(sdp.contains("m=application"));
    let my_mic = track("mic", TrackKind::Audio);
    let mic_mid = publish[0].mid.clone();
    let answer = answerer.answer(&sdp).await;
    server
        .send(ServerMessage::Answer {
            revision: 1,
            sdp: answer,
            published: vec![Published {
                mid: publish[0].mid.clone(),
                track: my_mic.clone(),
            }],
        })
        .await;
    let event = client
        .wait_for(|e| matches!(e, ClientEvent::Published { .. }), WAIT)
        .await
        .unwrap();
    assert_eq!(
        event,
        ClientEvent::Published {
            name: "mic".into(),
            track: my_mic.clone()
        }
    );
    assert_eq!(client.published_track("mic"), Some(my_mic.sid));

    // Offer 2: a receiving m-line for bob's mic; none for his data track.
    let (revision, sdp, publish, subscribe) = server.expect_offer().await;
    assert_eq!(revision, 2);
    assert!(publish.is_empty());
    assert_eq!(subscribe.len(), 1);
    assert_eq!(subscribe[0].track, bob_mic.sid);
    // "Bob's mic" is our own, looped back by the answerer.
    answerer.route(&mic_mid, &subscribe[0].mid, 0);
    let answer = answerer.answer(&sdp).await;
    server
        .send(ServerMessage::Answer {
            revision: 2,
            sdp: answer,
            published: vec![],
        })
        .await;
    let event = client
        .wait_for(|e| matches!(e, ClientEvent::MediaStarted { .. }), WAIT)
        .await
        .unwrap();
    assert_eq!(event, ClientEvent::MediaStarted { track: bob_mic.sid });

    // The data track is announced once its channel is open.
    let announced = server
        .expect("publish_data", |m| {
            matches!(m, ClientMessage::PublishData { .. })
        })
        .await;
    assert_eq!(
        announced,
        ClientMessage::PublishData {
            name: "chat".into(),
            label: "chat".into()
        }
    );
    let my_chat = track("chat", TrackKind::Data);
    server
        .send(ServerMessage::Published {
            published: Published {
                mid: "chat".into(),
                track: my_chat.clone(),
            },
        })
        .await;
    client
        .wait_for(
            |e| matches!(e, ClientEvent::Published { name, .. } if name == "chat"),
            WAIT,
        )
        .await
        .unwrap();
    // The server opens a channel labelled with bob's data track; the
    // answerer echoes our chat on it.
    answerer.open_channel(bob_chat.sid.as_str());
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.send_data("chat", "hi bob").await.unwrap();
    let event = client
        .wait_for(|e| matches!(e, ClientEvent::DataMessage { .. }), WAIT)
        .await
        .unwrap();
    assert_eq!(
        event,
        ClientEvent::DataMessage {
            track: bob_chat.sid,
            data: b"hi bob".to_vec()
        }
    );

    // Mute, then unpublish: the server hears of both, and the m-line stops.
    client.set_enabled("mic", false).await.unwrap();
    let muted = server
        .expect("set_track_enabled", |m| {
            matches!(m, ClientMessage::SetTrackEnabled { .. })
        })
        .await;
    assert_eq!(
        muted,
        ClientMessage::SetTrackEnabled {
            track: my_mic.sid,
            enabled: false
        }
    );
    client.unpublish("mic").await.unwrap();
    let unpublish = server
        .expect("unpublish", |m| {
            matches!(m, ClientMessage::Unpublish { .. })
        })
        .await;
    assert_eq!(unpublish, ClientMessage::Unpublish { track: my_mic.sid });
    let (revision, sdp, publish, subscribe) = server.expect_offer().await;
    assert_eq!(revision, 3);
    assert!(publish.is_empty() && subscribe.is_empty());
    assert_eq!(
        sdp.matches("m=audio 0 ").count(),
        1,
        "the mic's m-line is stopped"
    );
    let answer = answerer.answer(&sdp).await;
    server
        .send(ServerMessage::Answer {
            revision: 3,
            sdp: answer,
            published: vec![],
        })
        .await;

    // Room events update the participant list.
    server
        .send(ServerMessage::ParticipantDisconnected {
            participant: bob.sid,
        })
        .await;
    client
        .wait_for(
            |e| matches!(e, ClientEvent::ParticipantDisconnected { .. }),
            WAIT,
        )
        .await
        .unwrap();
    assert!(client.participants().is_empty());

    // A failed request is an event; the session goes on.
    server
        .send(ServerMessage::Error {
            code: 53304,
            message: "Track name is duplicated".into(),
            revision: Some(1),
        })
        .await;
    let event = client
        .wait_for(|e| matches!(e, ClientEvent::Error { .. }), WAIT)
        .await
        .unwrap();
    assert_eq!(
        event,
        ClientEvent::Error {
            code: 53304,
            message: "Track name is duplicated".into()
        }
    );

    assert!(server.pings >= 2, "pings every 100 ms: {}", server.pings);
    let stats = client.stats();
    assert!(stats.subscribed[&bob_mic.sid].packets > 0);
    assert_eq!(stats.subscribed[&bob_chat.sid].packets, 1);
    assert_eq!(stats.published["chat"].track, Some(my_chat.sid));

    // The room completes: the session ends with the server's code.
    server
        .send(ServerMessage::Disconnected {
            reason: DisconnectReason::RoomCompleted,
            code: Some(53118),
            message: "Room completed".into(),
        })
        .await;
    let event = client
        .wait_for(|e| matches!(e, ClientEvent::Disconnected { .. }), WAIT)
        .await
        .unwrap();
    assert_eq!(
        event,
        ClientEvent::Disconnected {
            reason: Some(DisconnectReason::RoomCompleted),
            code: Some(53118),
            message: "Room completed".into()
        }
    );
    assert_eq!(client.next_event().await, None, "nothing after the end");
    let err = client.send_data("chat", "late").await.unwrap_err();
    assert_eq!(err.code, codes::SIGNALING_DISCONNECTED);
}

#[tokio::test]
async fn leave_says_leave_and_waits_for_the_server() {
    let (mut server, connecting) =
        Server::accept(|url| ClientConfig::new(url, "t", "standup")).await;
    server
        .expect("join", |m| matches!(m, ClientMessage::Join { .. }))
        .await;
    let me = ParticipantInfo {
        sid: ParticipantSid::random(),
        identity: "alice".into(),
        tracks: vec![],
    };
    server.send(joined(&me, vec![])).await;
    let client = connecting.await.unwrap().unwrap();

    let leaving = tokio::spawn(client.leave());
    server
        .expect("leave", |m| matches!(m, ClientMessage::Leave {}))
        .await;
    assert!(
        !leaving.is_finished(),
        "leave waits for the server to close"
    );
    server
        .send(ServerMessage::Disconnected {
            reason: DisconnectReason::Left,
            code: None,
            message: "Participant left".into(),
        })
        .await;
    drop(server);
    tokio::time::timeout(WAIT, leaving).await.unwrap().unwrap();
}

/// A dropped socket is resumed on a new one (media goes on meanwhile);
/// a resume the server refuses (the session is gone) ends the session with
/// the server's code.
#[tokio::test]
async fn a_dropped_socket_is_resumed_and_a_refused_resume_ends_the_session() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/signaling", listener.local_addr().unwrap());
    let connecting = tokio::spawn(Client::connect(ClientConfig::new(url, "t", "standup")));
    let mut server = Server::on(&listener).await;
    server
        .expect("join", |m| matches!(m, ClientMessage::Join { .. }))
        .await;
    let me = ParticipantInfo {
        sid: ParticipantSid::random(),
        identity: "alice".into(),
        tracks: vec![],
    };
    server.send(joined(&me, vec![])).await;
    let mut client = connecting.await.unwrap().unwrap();

    drop(server);
    let mut server = Server::on(&listener).await;
    let resume = server
        .expect("resume", |m| matches!(m, ClientMessage::Resume { .. }))
        .await;
    assert!(
        matches!(&resume, ClientMessage::Resume { session, token, .. } if session == "session-1" && token == "t"),
        "{resume:?}"
    );
    let mut resumed = joined(&me, vec![]);
    if let ServerMessage::Joined { resumed, .. } = &mut resumed {
        *resumed = true;
    }
    server.send(resumed).await;
    client
        .wait_for(
            |e| matches!(e, ClientEvent::Resuming { code: 53001, .. }),
            WAIT,
        )
        .await
        .unwrap();
    client
        .wait_for(|e| matches!(e, ClientEvent::Resumed), WAIT)
        .await
        .unwrap();
    assert_eq!(client.stats().resumes, 1);

    drop(server);
    let mut server = Server::on(&listener).await;
    server
        .expect("resume", |m| matches!(m, ClientMessage::Resume { .. }))
        .await;
    server
        .send(ServerMessage::Error {
            code: 53204,
            message: "Participant not found".into(),
            revision: None,
        })
        .await;
    let event = client
        .wait_for(|e| matches!(e, ClientEvent::Disconnected { .. }), WAIT)
        .await
        .unwrap();
    assert!(
        matches!(
            event,
            ClientEvent::Disconnected {
                reason: None,
                code: Some(53204),
                ..
            }
        ),
        "{event:?}"
    );
}

/// A socket that drops while nothing answers for the session timeout:
/// the client gives up with 53000 (Twilio's "reconnection attempts were
/// exhausted"), not the 53001 it was resuming for.
#[tokio::test]
async fn resuming_in_vain_for_the_session_timeout_ends_with_53000() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/signaling", listener.local_addr().unwrap());
    let connecting = tokio::spawn(Client::connect(ClientConfig::new(url, "t", "standup")));
    let mut server = Server::on(&listener).await;
    server
        .expect("join", |m| matches!(m, ClientMessage::Join { .. }))
        .await;
    let me = ParticipantInfo {
        sid: ParticipantSid::random(),
        identity: "alice".into(),
        tracks: vec![],
    };
    let mut short = joined(&me, vec![]);
    if let ServerMessage::Joined {
        session_timeout, ..
    } = &mut short
    {
        *session_timeout = Some(1);
    }
    server.send(short).await;
    let mut client = connecting.await.unwrap().unwrap();
    // Nothing listens any more: every resume fails to connect.
    drop(server);
    drop(listener);
    client
        .wait_for(
            |e| matches!(e, ClientEvent::Resuming { code: 53001, .. }),
            WAIT,
        )
        .await
        .unwrap();
    let event = client
        .wait_for(|e| matches!(e, ClientEvent::Disconnected { .. }), WAIT)
        .await
        .unwrap();
    assert!(
        matches!(
            event,
            ClientEvent::Disconnected {
                reason: None,
                code: Some(53000),
                ..
            }
        ),
        "{event:?}"
    );
}

/// A node of a cluster says so in `joined` (`node`): when its socket drops
/// the client resumes, and when the answer is that the room's node is lost
/// it joins the room again by name by itself (the default); the handle's
/// `room()` and `participant()` name the new ones once `Rejoined` is read.
#[tokio::test]
async fn in_a_cluster_a_lost_node_is_rejoined_by_default() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/signaling", listener.local_addr().unwrap());
    let connecting = tokio::spawn(Client::connect(ClientConfig::new(url, "t", "standup")));
    let accept = Server::on;
    let in_cluster = |me: &ParticipantInfo| {
        let mut joined = joined(me, vec![]);
        if let ServerMessage::Joined { node, .. } = &mut joined {
            *node = Some("node-a".into());
        }
        joined
    };
    let mut server = accept(&listener).await;
    server
        .expect("join", |m| matches!(m, ClientMessage::Join { .. }))
        .await;
    let me = ParticipantInfo {
        sid: ParticipantSid::random(),
        identity: "alice".into(),
        tracks: vec![],
    };
    server.send(in_cluster(&me)).await;
    let mut client = connecting.await.unwrap().unwrap();
    let first = client.room().sid;

    // The node dies: the socket drops without a word, and the resume is
    // answered that the session's node is lost.
    drop(server);
    let mut server = accept(&listener).await;
    server
        .expect("resume", |m| matches!(m, ClientMessage::Resume { .. }))
        .await;
    server
        .send(ServerMessage::Disconnected {
            reason: DisconnectReason::NodeLost,
            code: Some(53001),
            message: "the room's node is gone".into(),
        })
        .await;
    drop(server);
    let mut server = accept(&listener).await;
    let join = server
        .expect("join again", |m| matches!(m, ClientMessage::Join { .. }))
        .await;
    assert!(
        matches!(&join, ClientMessage::Join { room: Some(room), .. } if room == "standup"),
        "{join:?}"
    );
    let again = ParticipantInfo {
        sid: ParticipantSid::random(),
        identity: "alice".into(),
        tracks: vec![],
    };
    let joined_again = in_cluster(&again);
    let ServerMessage::Joined { room, .. } = &joined_again else {
        unreachable!()
    };
    let second = room.sid;
    assert_ne!(first, second);
    server.send(joined_again).await;
    client
        .wait_for(
            |e| matches!(e, ClientEvent::Rejoining { code: 53001, .. }),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(client.room().sid, first, "not rejoined yet");
    let rejoined = client
        .wait_for(|e| matches!(e, ClientEvent::Rejoined { .. }), WAIT)
        .await
        .unwrap();
    assert!(
        matches!(&rejoined, ClientEvent::Rejoined { room, .. } if room.sid == second),
        "{rejoined:?}"
    );
    assert_eq!(client.room().sid, second);
    assert_eq!(client.participant().sid, again.sid);
}

/// A newer server may send message types this client does not know and
/// fields it does not know: the first are skipped, the second ignored, and
/// the session goes on (docs/protocol.md, "Fields and types neither side
/// knows").
#[tokio::test]
async fn what_a_newer_server_adds_is_skipped_or_ignored() {
    let (mut server, connecting) =
        Server::accept(|url| ClientConfig::new(url, "t", "standup")).await;
    server
        .expect("join", |m| matches!(m, ClientMessage::Join { .. }))
        .await;
    let me = ParticipantInfo {
        sid: ParticipantSid::random(),
        identity: "alice".into(),
        tracks: vec![],
    };
    let joined = joined(&me, vec![]).to_json();
    let with_region = joined.replacen(
        r#""type":"joined""#,
        r#""type":"joined","region":"eu-1""#,
        1,
    );
    assert_ne!(joined, with_region);
    server.ws.send_text(with_region).await;
    let mut client = connecting.await.unwrap().unwrap();

    server
        .ws
        .send_text(r#"{"type":"network_quality","level":4}"#.into())
        .await;
    let bob = ParticipantSid::random();
    server
        .ws
        .send_text(format!(
            r#"{{"type":"participant_connected","participant":{{"sid":"{bob}","identity":"bob","tracks":[],"region":"eu-1"}},"at":12}}"#
        ))
        .await;
    let connected = client
        .wait_for(
            |e| matches!(e, ClientEvent::ParticipantConnected { .. }),
            WAIT,
        )
        .await
        .expect("bob's arrival, after the unknown message");
    let ClientEvent::ParticipantConnected { participant } = connected else {
        unreachable!()
    };
    assert_eq!(participant.sid, bob);
    assert_eq!(client.participants().len(), 1);
}
