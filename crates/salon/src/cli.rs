//! The command line.

use clap::{Parser, Subcommand};

use crate::settings::Flags;

/// Salon: self-hosted video rooms with Twilio Programmable Video's contracts.
///
/// With no command, `salon` runs the server (`salon serve`). Every setting
/// can also come from a `SALON_*` environment variable or from `salon.toml`.
#[derive(Debug, Parser)]
#[command(
    name = "salon",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub flags: Flags,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: REST API, signaling and media, demo app and SDK, tutorial routes, health and metrics (the default)
    Serve,
    /// Mint and inspect access tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage API keys (they sign tokens and authenticate REST calls)
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage rooms through the running server's REST API
    #[command(subcommand)]
    Rooms(RoomsCommand),
    /// See the nodes of a cluster (from Redis: --redis-url)
    #[command(subcommand)]
    Nodes(NodesCommand),
    /// Check the TURN server clients are handed
    #[command(subcommand)]
    Turn(crate::commands::turn::TurnCommand),
    /// List and download recordings through the running server's REST API
    #[command(subcommand)]
    Recordings(RecordingsCommand),
    /// Compose a room's recordings into one file, list and download compositions
    #[command(subcommand)]
    Compositions(CompositionsCommand),
    // Its help is the doc comment of `LoadtestArgs`.
    Loadtest(crate::commands::loadtest::LoadtestArgs),
    // Its help is the doc comment of `BenchRelayArgs`.
    BenchRelay(crate::commands::bench_relay::BenchRelayArgs),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint an access token, signed with the oldest active API key (or --key)
    Create {
        /// Who the token identifies (1–128 characters)
        #[arg(long)]
        identity: String,
        /// Restrict the token to this room (a unique name or RM… SID); without it the token joins any room
        #[arg(long)]
        room: Option<String>,
        /// Lifetime in seconds (at most 86400)
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// API key SID to sign with
        #[arg(long, value_name = "SID")]
        key: Option<String>,
        /// Signature algorithm
        #[arg(long, default_value = "HS256", value_parser = ["HS256", "HS384", "HS512"])]
        algorithm: String,
    },
    /// Decode a token, verify it against the stored keys, and explain the verdict
    ///
    /// Exits 0 when the token is valid, 1 when it is rejected.
    Inspect {
        /// The token (a JWT), or `-` to read it from standard input
        token: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key and print its secret (shown only once)
    Create {
        /// A name to remember the key by
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List API keys
    List,
    /// Revoke an API key: tokens it signed stop verifying and REST calls with it fail (a running server notices within a second)
    Revoke {
        /// The key's SID (SK…)
        sid: String,
    },
}

/// Where the `rooms` commands send their REST calls.
#[derive(Clone, Debug, clap::Args)]
pub struct RestTarget {
    /// Base URL of the running server [default: the public URL]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Print the raw JSON response
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// List the live nodes: id, public URL, media address, rooms and participants, since when, last renewal
    List,
}

#[derive(Debug, Subcommand)]
pub enum RoomsCommand {
    /// Create a room
    Create {
        /// Unique name (defaults to the room's SID)
        #[arg(long)]
        name: Option<String>,
        /// Room type
        #[arg(long = "type", value_parser = ["group", "group-small", "peer-to-peer", "go"])]
        room_type: Option<String>,
        /// Most participants at once
        #[arg(long)]
        max_participants: Option<u32>,
        /// Minutes an empty room stays open after the last participant leaves (1–60)
        #[arg(long, value_name = "MINUTES")]
        empty_room_timeout: Option<u32>,
        /// Minutes a room nobody joins stays open (1–60)
        #[arg(long, value_name = "MINUTES")]
        unused_room_timeout: Option<u32>,
        /// Longest a participant may stay, in seconds (600–86400)
        #[arg(long, value_name = "SECONDS")]
        max_participant_duration: Option<u32>,
        /// Record every track from the start (RecordParticipantsOnConnect)
        #[arg(long)]
        record: bool,
        #[command(flatten)]
        target: RestTarget,
    },
    /// List rooms
    List {
        /// in-progress, completed or failed
        #[arg(long, default_value = "in-progress")]
        status: String,
        /// Only rooms with this unique name
        #[arg(long)]
        name: Option<String>,
        /// Stop after this many rooms
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        target: RestTarget,
    },
    /// Show a room, by SID or by the unique name of a room in progress
    Get {
        room: String,
        #[command(flatten)]
        target: RestTarget,
    },
    /// Complete a room: everyone in it is disconnected
    Complete {
        room: String,
        #[command(flatten)]
        target: RestTarget,
    },
}

#[derive(Debug, Subcommand)]
pub enum RecordingsCommand {
    /// List recordings, newest first
    List {
        /// Only this room's recordings
        #[arg(long)]
        room: Option<String>,
        /// processing, completed, failed or deleted
        #[arg(long)]
        status: Option<String>,
        /// Stop after this many recordings
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        target: RestTarget,
    },
    /// Show a recording
    Get {
        recording: String,
        #[command(flatten)]
        target: RestTarget,
    },
    /// Download a recording's file (.mka or .mkv)
    Download {
        recording: String,
        /// Where to write it [default: <RecordingSid>.<container>]
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
        #[command(flatten)]
        target: RestTarget,
    },
}

#[derive(Debug, Subcommand)]
pub enum CompositionsCommand {
    /// Compose an ended room's recordings (a grid of every video, all audio mixed, by default)
    Create {
        /// The room (SID)
        room: String,
        /// Twilio's VideoLayout JSON
        #[arg(long, default_value = r#"{"grid":{"video_sources":["*"]}}"#)]
        layout: String,
        /// Audio sources (track names, `*`, or recording SIDs), comma-separated
        #[arg(long, default_value = "*")]
        audio: String,
        /// mp4 or webm
        #[arg(long, default_value = "mp4", value_parser = ["mp4", "webm"])]
        format: String,
        /// WIDTHxHEIGHT
        #[arg(long, default_value = "640x480")]
        resolution: String,
        /// Start at the first recording (true) or at the room's creation (false)
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
        trim: bool,
        #[command(flatten)]
        target: RestTarget,
    },
    /// List compositions, newest first
    List {
        /// Only this room's compositions
        #[arg(long)]
        room: Option<String>,
        /// Stop after this many compositions
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        target: RestTarget,
    },
    /// Download a composition's file
    Download {
        composition: String,
        /// Where to write it [default: <CompositionSid>.<format>]
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
        #[command(flatten)]
        target: RestTarget,
    },
}
