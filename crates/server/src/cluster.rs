//! Several nodes: what the server asks of the cluster, and what it does for
//! the other nodes.
//!
//! A room lives on one node (its room core, its media); the records are
//! shared (PostgreSQL), and each room's row names its node. This module is
//! the server's side of the cluster, without Redis: the `salon` binary
//! implements [`Cluster`] on Redis (registry, placement, message bus) and
//! hands it to [`crate::Server::join_cluster`]. Without it (one node) every
//! function here answers "here".
//!
//! - **Placement** ([`placement`]): a new room, created by REST or by a
//!   participant's join, goes to the least-loaded live node that is not
//!   draining ([`Cluster::place`]). REST creates it there with a
//!   [`Command::CreateRoom`]; a join is redirected there.
//! - **Commands** ([`run_on`], [`execute`]): what must happen on the room's
//!   node (complete a room, kick a participant, apply recording rules)
//!   travels there as a [`Command`] and its [`Outcome`] comes back; the REST
//!   caller gets the same answer (or Twilio error) as on the room's node,
//!   or 503 (20503) naming the node that did not answer.
//! - **Signaling** ([`route_join`]): a join for a room on another node is
//!   redirected to that node's public URL; a join for a new room that
//!   placement gives to another node too. The redirect carries
//!   `?node=<id>`, so the node it names creates the room rather than
//!   placing it again (no ping-pong while loads change).
//!
//! Nothing here is on the packet path.

use std::future::Future;
use std::pin::Pin;

use axum::http::StatusCode;
use salon_sid::{CompositionSid, ParticipantSid, RecordingSid, RoomSid};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::rest::error::ApiError;
use crate::rest::params::Params;
use crate::service::ServiceError;
use crate::session::Refusal;

/// A boxed future, so [`Cluster`] can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why the cluster could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// Redis does not answer: no placement, no redirects, no messages.
    #[error("the cluster's Redis is unreachable ({0})")]
    Unreachable(String),
    /// The node is not registered, or did not answer in time.
    #[error("node {node} does not answer ({detail})")]
    NodeUnavailable { node: String, detail: String },
    /// Every live node is draining.
    #[error("no live node takes new rooms")]
    NoNode,
    /// The shared database does not answer: no placement.
    #[error("the database is unavailable ({0})")]
    Database(String),
}

/// A live node, as the registry shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    /// Its own public base URL (`https://node2.video.example.com`).
    pub public_url: String,
}

/// The cluster, as the server uses it.
pub trait Cluster: Send + Sync + 'static {
    /// This node's id.
    fn node(&self) -> &str;
    /// Whether this node is draining (SIGTERM): it takes no new rooms.
    fn draining(&self) -> bool;
    /// The node a new room should go to: the least-loaded live node that is
    /// not draining (this one or another).
    fn place(&self) -> BoxFuture<'_, Result<NodeInfo, ClusterError>>;
    /// A live node's record, `None` when it is not registered.
    fn find<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<Option<NodeInfo>, ClusterError>>;
    /// Run `command` on `node` and wait (bounded) for its outcome.
    fn send<'a>(
        &'a self,
        node: &'a str,
        command: Command,
    ) -> BoxFuture<'a, Result<Outcome, ClusterError>>;
    /// Keep `value` under `key` for every node to read, for at most `ttl`;
    /// `None` drops it. Best effort: what Redis refuses is logged.
    fn keep<'a>(
        &'a self,
        key: &'a str,
        value: Option<String>,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, ()>;
    /// What [`Cluster::keep`] kept under `key`, if it still is.
    fn kept<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<String>>;
}

/// What one node asks another to do for a room it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// `POST /v1/Rooms`, placed on the receiving node: its parameters as sent.
    CreateRoom { params: Vec<(String, String)> },
    /// `POST /v1/Rooms/{Sid}` with `Status=completed`.
    CompleteRoom { room: RoomSid },
    /// `POST …/Participants/{Sid}` with `Status=disconnected`.
    DisconnectParticipant { participant: ParticipantSid },
    /// Apply recording rules already stored (`…/RecordingRules`).
    ApplyRecordingRules { room: RoomSid, rules: String },
    /// `POST /v1/Compositions`, sent to the node whose disk holds the
    /// room's recordings: its parameters as sent.
    CreateComposition { params: Vec<(String, String)> },
    /// Remove the file of a deleted recording or composition from this
    /// node's disk (the record says which file; only a deleted one's).
    RemoveMedia {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recording: Option<RecordingSid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        composition: Option<CompositionSid>,
    },
}

impl Command {
    pub fn kind(&self) -> &'static str {
        match self {
            Command::CreateRoom { .. } => "create_room",
            Command::CompleteRoom { .. } => "complete_room",
            Command::DisconnectParticipant { .. } => "disconnect_participant",
            Command::ApplyRecordingRules { .. } => "apply_recording_rules",
            Command::CreateComposition { .. } => "create_composition",
            Command::RemoveMedia { .. } => "remove_media",
        }
    }
}

/// What became of a [`Command`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outcome {
    /// Done; `room` is the room created by [`Command::CreateRoom`],
    /// `composition` the one [`Command::CreateComposition`] queued.
    Done {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomSid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        composition: Option<CompositionSid>,
    },
    /// Refused, with the Twilio error the REST caller gets.
    Refused {
        status: u16,
        code: u32,
        message: String,
    },
}

impl From<ApiError> for Outcome {
    fn from(e: ApiError) -> Self {
        Outcome::Refused {
            status: e.status.as_u16(),
            code: e.code,
            message: e.message,
        }
    }
}

/// Run `command` here, for another node.
pub async fn execute(state: &AppState, command: Command) -> Outcome {
    let done = |room| Outcome::Done {
        room,
        composition: None,
    };
    match command {
        Command::CreateRoom { params } => {
            let params = Params::from_pairs(params);
            match crate::rest::rooms::create_here(state, &params).await {
                Ok(sid) => done(Some(sid)),
                Err(e) => e.into(),
            }
        }
        Command::CompleteRoom { room } => match state.rooms.complete(room).await {
            Ok(()) | Err(ServiceError::Room(salon_room::RoomError::RoomNotFound(_))) => done(None),
            Err(e) => crate::rest::service_error(e).into(),
        },
        Command::DisconnectParticipant { participant } => {
            match state
                .rooms
                .disconnect(participant, salon_room::DisconnectReason::Kicked)
                .await
            {
                Ok(()) | Err(ServiceError::Room(salon_room::RoomError::ParticipantNotFound(_))) => {
                    done(None)
                }
                Err(e) => crate::rest::service_error(e).into(),
            }
        }
        Command::CreateComposition { params } => {
            let params = Params::from_pairs(params);
            match crate::rest::compositions::create_here(state, &params).await {
                Ok(record) => Outcome::Done {
                    room: None,
                    composition: Some(record.sid),
                },
                Err(e) => e.into(),
            }
        }
        Command::RemoveMedia {
            recording,
            composition,
        } => {
            let path = match (recording, composition) {
                (Some(sid), _) => state
                    .store
                    .recording(sid)
                    .await
                    .ok()
                    .flatten()
                    .filter(|r| r.status == salon_store::RecordingStatus::Deleted)
                    .map(|r| state.recordings.dir().join(r.path)),
                (None, Some(sid)) => state
                    .store
                    .composition(sid)
                    .await
                    .ok()
                    .flatten()
                    .filter(|c| c.status == "deleted")
                    .map(|c| state.compositions.dir().join(c.path)),
                (None, None) => None,
            };
            if let Some(path) = path {
                let _ = tokio::fs::remove_file(path).await;
            }
            done(None)
        }
        Command::ApplyRecordingRules { room, rules } => {
            match crate::rest::recordings::parse_rules(&rules) {
                Ok(rules) => {
                    state.recordings.set_rules(room, rules).await;
                    done(None)
                }
                Err(e) => e.into(),
            }
        }
    }
}

/// The node other than this one that runs `room`, if another does.
pub async fn remote_holder(state: &AppState, room: RoomSid) -> Result<Option<String>, ApiError> {
    let Some(cluster) = &state.cluster else {
        return Ok(None);
    };
    let node = state.store.room_node(room).await?;
    Ok(node.filter(|n| n != cluster.node()))
}

/// What a command done on another node made.
#[derive(Debug, Clone, Copy, Default)]
pub struct Made {
    pub room: Option<RoomSid>,
    pub composition: Option<CompositionSid>,
}

/// Run `command` on `node` and turn its outcome into the REST answer.
pub async fn run_on(state: &AppState, node: &str, command: Command) -> Result<Made, ApiError> {
    let Some(cluster) = &state.cluster else {
        return Err(ApiError::internal(
            "a command for another node without a cluster",
        ));
    };
    let kind = command.kind();
    match cluster.send(node, command).await {
        Ok(Outcome::Done { room, composition }) => Ok(Made { room, composition }),
        Ok(Outcome::Refused {
            status,
            code,
            message,
        }) => Err(ApiError::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message,
        )),
        Err(e) => {
            tracing::warn!(node, command = kind, error = %e, "a command for another node failed");
            Err(ApiError::unavailable(format!(
                "The room's node cannot be reached: {e}"
            )))
        }
    }
}

/// Where a node-local file (a recording or composition written by node
/// `writer`, at `path` on a node's disk) is served from: `None` here (a
/// single node, this node's file, or a directory the nodes share), or the
/// live node that wrote it. Refused (503, 20503) while that node is away.
pub async fn file_node(
    state: &AppState,
    writer: Option<String>,
    path: &std::path::Path,
) -> Result<Option<NodeInfo>, ApiError> {
    let Some(cluster) = &state.cluster else {
        return Ok(None);
    };
    let Some(writer) = writer.filter(|w| w != cluster.node()) else {
        return Ok(None);
    };
    if tokio::fs::try_exists(path).await.unwrap_or(false) {
        return Ok(None);
    }
    match cluster.find(&writer).await {
        Ok(Some(node)) => Ok(Some(node)),
        Ok(None) => Err(ApiError::unavailable(format!(
            "The media is on node {writer}, which is not running; it can be fetched when that node is back"
        ))),
        Err(e) => Err(ApiError::unavailable(format!(
            "Cannot find node {writer}, which holds the media: {e}"
        ))),
    }
}

/// Remove the files of this node's recordings and compositions that were
/// deleted while it was away ([`remove_media`] leaves them): run at start.
pub async fn remove_media_deleted_while_away(state: AppState) {
    let deleted = match state.store.deleted_media().await {
        Ok(deleted) => deleted,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read which media was deleted; its files stay until the next start");
            return;
        }
    };
    let files = deleted
        .recordings
        .iter()
        .map(|path| state.recordings.dir().join(path))
        .chain(
            deleted
                .compositions
                .iter()
                .map(|path| state.compositions.dir().join(path)),
        );
    let mut removed = 0;
    for file in files {
        if tokio::fs::remove_file(&file).await.is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(
            files = removed,
            "removed the files of media deleted while this node was away"
        );
    }
}

/// Remove the file of a deleted recording or composition (written by node
/// `writer`, at `path` on a node's disk) from the disk that holds it: here,
/// or through `command` on the live node that wrote it. A file whose node
/// is away stays (it is no longer served: its record says deleted) until
/// that node starts again ([`remove_media_deleted_while_away`]).
pub async fn remove_media(
    state: &AppState,
    writer: Option<String>,
    path: &std::path::Path,
    command: Command,
) {
    match file_node(state, writer, path).await {
        Ok(None) => {
            let _ = tokio::fs::remove_file(path).await;
        }
        Ok(Some(node)) => {
            if let Err(e) = run_on(state, &node.id, command).await {
                tracing::warn!(node = node.id, error = %e.message, "the node holding a deleted file did not remove it");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e.message, ?path, "a deleted file stays on a node that is away")
        }
    }
}

/// Where a new room goes: `None` here, `Some(node)` another node. Refused
/// (503, 20503) while the cluster cannot place rooms.
pub async fn placement(state: &AppState) -> Result<Option<String>, ApiError> {
    let Some(cluster) = &state.cluster else {
        return Ok(None);
    };
    // Placement reads the shared records; and this node's records must be
    // written before it is told of a new room.
    if !state.rooms.health().accepts_new_rooms() {
        return Err(ApiError::database_unavailable());
    }
    match cluster.place().await {
        Ok(node) if node.id == cluster.node() => Ok(None),
        Ok(node) => Ok(Some(node.id)),
        Err(e) => Err(ApiError::unavailable(format!(
            "Cannot create a room now: {e}"
        ))),
    }
}

/// Why [`existing_room`] found no room to route to.
enum Lookup {
    /// A SID of a room that is over or unknown.
    NotInProgress,
    Store(salon_store::StoreError),
}

/// The room in progress that `text` (a unique name or an `RM` SID) names,
/// from the shared records.
async fn existing_room(state: &AppState, text: &str) -> Result<Option<RoomSid>, Lookup> {
    match text.parse::<RoomSid>() {
        Ok(sid) => match state.store.room(sid).await.map_err(Lookup::Store)? {
            Some(record) if record.status == salon_store::RoomStatus::InProgress => Ok(Some(sid)),
            _ => Err(Lookup::NotInProgress),
        },
        Err(_) => Ok(state
            .store
            .room_in_progress_by_name(text)
            .await
            .map_err(Lookup::Store)?
            .map(|r| r.sid)),
    }
}

/// Whether this node's room core runs the room `text` names.
async fn held_here(state: &AppState, text: &str) -> bool {
    let room = salon_room::RoomRef::parse(text);
    state
        .rooms
        .call(move |rooms, _| match room {
            salon_room::RoomRef::Sid(sid) => rooms.room(sid).is_some(),
            salon_room::RoomRef::Name(name) => rooms.room_by_name(&name).is_some(),
        })
        .await
        .unwrap_or(false)
}

/// Where a join should be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Here,
    /// At this node, whose public URL is given.
    Elsewhere(NodeInfo),
}

/// Where the join for `room` (a unique name or an `RM` SID; `None`: a new
/// room named by its SID) is served. `placed_here`: the client was
/// redirected here to create the room.
pub(crate) async fn route_join(
    state: &AppState,
    room: Option<&str>,
    placed_here: bool,
) -> Result<Route, Refusal> {
    let Some(cluster) = &state.cluster else {
        return Ok(Route::Here);
    };
    let store_error = |e: salon_store::StoreError| {
        tracing::warn!(error = %e, "cannot look up a room's node");
        Refusal::new(
            salon_signal::codes::SERVER_BUSY,
            "Cannot look up the room now",
        )
    };
    let existing = match room {
        None => None,
        // Known to be away: do not wait for it to fail again. Only a room
        // this node holds can be found.
        Some(text) if state.rooms.health().is_down() => {
            if held_here(state, text).await {
                return Ok(Route::Here);
            }
            return Err(Refusal::new(
                salon_signal::codes::SERVER_BUSY,
                "Cannot look up or create the room now: the database is unavailable",
            ));
        }
        Some(text) => match existing_room(state, text).await {
            Ok(Some(sid)) => Some(sid),
            Ok(None) => None,
            // Over or unknown: the room core refuses as it should.
            Err(Lookup::NotInProgress) => return Ok(Route::Here),
            // The database is away: a room in progress here still takes
            // joins (only this node can know it holds it).
            Err(Lookup::Store(e)) if held_here(state, text).await => {
                tracing::debug!(error = %e, room = text, "database away: joining a room held here");
                return Ok(Route::Here);
            }
            Err(Lookup::Store(e)) => return Err(store_error(e)),
        },
    };
    if let Some(sid) = existing {
        let node = state.store.room_node(sid).await.map_err(store_error)?;
        let Some(node) = node.filter(|n| n != cluster.node()) else {
            return Ok(Route::Here);
        };
        return match cluster.find(&node).await {
            Ok(Some(info)) => Ok(Route::Elsewhere(info)),
            // Registered no more: dead, and its rooms are about to be
            // failed. The client tries again (and then gets a new room).
            Ok(None) => Err(Refusal::new(
                salon_signal::codes::SERVER_BUSY,
                format!("The room's node {node} is not answering; try again in a few seconds"),
            )),
            Err(e) => Err(Refusal::new(
                salon_signal::codes::SERVER_BUSY,
                format!("Cannot reach the room's node now: {e}"),
            )),
        };
    }
    // A new room.
    if !state.rooms.health().accepts_new_rooms() {
        return Err(Refusal::new(
            salon_signal::codes::SERVER_BUSY,
            "Cannot create a room now: the database is unavailable",
        ));
    }
    if placed_here && !cluster.draining() {
        return Ok(Route::Here);
    }
    match cluster.place().await {
        Ok(node) if node.id == cluster.node() => Ok(Route::Here),
        Ok(node) => Ok(Route::Elsewhere(node)),
        Err(e) => Err(Refusal::new(
            salon_signal::codes::SERVER_BUSY,
            format!("Cannot create a room now: {e}"),
        )),
    }
}

/// The WebSocket URL of `path` (`/v1/signaling`, `/signaling`) on `node`,
/// with the `node` hint that stops a second placement.
pub fn signaling_url(node: &NodeInfo, path: &str) -> String {
    let base = node.public_url.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    let node_id: String =
        percent_encoding::utf8_percent_encode(&node.id, percent_encoding::NON_ALPHANUMERIC)
            .collect();
    format!("{base}{path}?node={node_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_outcomes_read_back_as_written() {
        let commands = [
            Command::CreateRoom {
                params: vec![("UniqueName".into(), "standup".into())],
            },
            Command::CompleteRoom {
                room: RoomSid::random(),
            },
            Command::DisconnectParticipant {
                participant: ParticipantSid::random(),
            },
            Command::ApplyRecordingRules {
                room: RoomSid::random(),
                rules: "[]".into(),
            },
        ];
        for command in commands {
            let text = serde_json::to_string(&command).unwrap();
            assert_eq!(serde_json::from_str::<Command>(&text).unwrap(), command);
        }
        let refused = Outcome::from(ApiError::bad_request(53113, "Room exists"));
        let text = serde_json::to_string(&refused).unwrap();
        assert_eq!(serde_json::from_str::<Outcome>(&text).unwrap(), refused);
        assert!(serde_json::from_str::<Command>(r#"{"type":"dance"}"#).is_err());
    }

    #[test]
    fn a_redirect_names_the_node_and_speaks_websocket() {
        let node = NodeInfo {
            id: "node b".into(),
            public_url: "https://b.example.com/".into(),
        };
        assert_eq!(
            signaling_url(&node, "/v1/signaling"),
            "wss://b.example.com/v1/signaling?node=node%20b"
        );
        let node = NodeInfo {
            id: "c".into(),
            public_url: "http://127.0.0.1:3000".into(),
        };
        assert_eq!(
            signaling_url(&node, "/signaling"),
            "ws://127.0.0.1:3000/signaling?node=c"
        );
    }
}
