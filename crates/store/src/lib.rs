//! Salon's records: accounts and API keys, and the history of rooms,
//! participants and tracks that the REST API reads.
//!
//! # The contract
//!
//! * **Room state is written from events only.** [`Store::record`] applies
//!   the room core's [`salon_room::Event`]s; nothing else writes rooms,
//!   participants or tracks (except [`Store::close_abandoned`] at startup,
//!   which ends what a previous process left behind, at the time of its
//!   last [`Store::heartbeat`]). The REST API reads.
//! * **Status callbacks** are written with the events that cause them, in the
//!   same transaction, to an outbox the server's sender empties
//!   ([`Store::due_callbacks`], [`Store::remove_callback`],
//!   [`Store::retry_callback`]): a callback exists if and only if its event
//!   was recorded.
//! * **Credentials** are read and written directly: they are configuration,
//!   not room state.
//! * **SQLite in WAL mode** by default, one file in the data directory, with
//!   migrations applied on open. The SQL sticks to what PostgreSQL also
//!   understands, for the multi-node future.
//!
//! Lists page by keyset ([`Cursor`]): a page is "the next N rows after this
//! one", stable while rows are being added, and as cheap on page 1,000 as on
//! page 1.

mod callbacks;
mod compositions;
mod credentials;
mod events;
mod outbox;
mod queries;
mod recordings;
mod records;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

pub use callbacks::{CallbackEvent, twilio_timestamp};
pub use compositions::{CompositionFilter, CompositionRecord};
pub use credentials::{Account, ApiKeyRecord};
pub use events::Abandoned;
pub use outbox::{OutboxBacklog, OutboxCallback};
pub use queries::{Cursor, Page, PageRequest, ParticipantFilter, RoomFilter};
pub use recordings::{NewRecording, RecordingFilter, RecordingRecord, RecordingStatus};
pub use records::{
    ParticipantRecord, ParticipantStatus, PublishedTrackRecord, RoomRecord, RoomStatus,
    SubscribedTrackRecord, Timestamp,
};

/// A failure of the database itself (I/O, corruption, a bug in a query).
/// Absence is not an error: lookups return `Option`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt record in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "salon.db";

/// A handle to the database. Cheap to clone; all clones share one pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// For the change watcher's own connection. Shared: handlers clone the
    /// store per request, and the options are a sizeable map of pragmas.
    options: Arc<SqliteConnectOptions>,
    /// Rung after a commit that wrote status callbacks.
    doorbell: Arc<outbox::Doorbell>,
}

impl Store {
    /// Open (creating if needed) `salon.db` in `data_dir`, in WAL mode, and
    /// bring its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join(DATABASE_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable across process crashes; only a power
            // loss can drop the last commits, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .log_statements(tracing::log::LevelFilter::Trace);
        Self::connect(options).await
    }

    /// Open a database from a `sqlite:` URL (tests, tools).
    pub async fn open_url(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        Self::connect(options).await
    }

    async fn connect(options: SqliteConnectOptions) -> Result<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self {
            pool,
            options: Arc::new(options),
            doorbell: Arc::default(),
        })
    }

    /// Close every connection, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers: for `/healthz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The journal mode SQLite reports (`wal` unless the file system refused).
    pub async fn journal_mode(&self) -> Result<String> {
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&self.pool)
            .await?;
        Ok(mode)
    }

    /// A watcher that notices commits made by *other* connections, such as
    /// `salon keys revoke` run while the server is up.
    pub async fn watch(&self) -> Result<ChangeWatcher> {
        let mut conn = self.options.connect().await?;
        let version = data_version(&mut conn).await?;
        Ok(ChangeWatcher { conn, version })
    }
}

/// Notices when the database file changed under us (see [`Store::watch`]).
pub struct ChangeWatcher {
    conn: SqliteConnection,
    version: i64,
}

impl ChangeWatcher {
    /// Whether any other connection committed since the last call. Costs one
    /// `PRAGMA data_version`, which reads no table.
    pub async fn changed(&mut self) -> Result<bool> {
        let version = data_version(&mut self.conn).await?;
        let changed = version != self.version;
        self.version = version;
        Ok(changed)
    }

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

async fn data_version(conn: &mut SqliteConnection) -> Result<i64> {
    let (version,): (i64,) = sqlx::query_as("PRAGMA data_version")
        .fetch_one(conn)
        .await?;
    Ok(version)
}
