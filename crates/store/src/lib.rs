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
//! * **SQLite in WAL mode** by default, one file in the data directory, or
//!   **PostgreSQL** ([`Store::open_url`] with a `postgres://` URL) for
//!   several nodes sharing one database. One set of migrations and one set
//!   of statements serve both, through sqlx's `Any` driver: the SQL sticks
//!   to what both understand (numbered `$1` placeholders, `ON CONFLICT`,
//!   `RETURNING`, partial indexes, row values), and the only difference is
//!   how a connection is set up and how a writing transaction begins
//!   ([`Backend`]).
//!
//! Lists page by keyset ([`Cursor`]): a page is "the next N rows after this
//! one", stable while rows are being added, and as cheap on page 1,000 as on
//! page 1.

mod callbacks;
mod composition_hooks;
mod compositions;
mod credentials;
mod events;
mod outbox;
mod queries;
mod recordings;
mod records;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool};
use sqlx::{ConnectOptions, Connection, Executor};

pub use callbacks::{CallbackEvent, twilio_timestamp};
pub use composition_hooks::{CompositionHookFilter, CompositionHookRecord};
pub use compositions::{CompositionFilter, CompositionRecord};
pub use credentials::{Account, ApiKeyRecord};
pub use events::{Abandoned, BatchMark};
pub use outbox::{OutboxBacklog, OutboxCallback};
pub use queries::{Cursor, Page, PageRequest, ParticipantFilter, RoomFilter};
pub use recordings::{
    DeletedMedia, NewRecording, RecordingFilter, RecordingRecord, RecordingStatus,
};
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
    #[error("unsupported database URL scheme {scheme:?}: use sqlite: or postgres://")]
    UnsupportedUrl { scheme: String },
    #[error("corrupt record in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
}

impl StoreError {
    /// Whether a unique index refused the write: for rooms, another room in
    /// progress has the unique name (another node's, on a shared database).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// Whether the database is away rather than the request wrong: the
    /// same write can succeed later, so it should be kept and retried, not
    /// dropped. Connection failures and timeouts; PostgreSQL's connection
    /// exceptions (class 08), lack of resources (53), shutdown and restart
    /// (57P), serialization failures and deadlocks; SQLite's busy, locked,
    /// I/O error and full disk.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(e) => {
                let code = e.code().unwrap_or_default();
                if e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    transient_sqlstate(&code)
                } else if e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    // SQLite's extended result code, as a number; the
                    // primary code is its low byte.
                    code.parse::<u32>().is_ok_and(|n| {
                        matches!(
                            n & 0xff,
                            SQLITE_BUSY | SQLITE_LOCKED | SQLITE_IOERR | SQLITE_FULL
                        )
                    })
                } else {
                    false
                }
            }
            _ => false,
        }
    }
}

const SQLITE_BUSY: u32 = 5;
const SQLITE_LOCKED: u32 = 6;
const SQLITE_IOERR: u32 = 10;
const SQLITE_FULL: u32 = 13;

/// A PostgreSQL SQLSTATE that means "try again later": connection
/// exceptions, insufficient resources, operator intervention (shutdown,
/// restart), serialization failure, deadlock.
fn transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == "40001"
        || code == "40P01"
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The node a server is unless told otherwise: one server alone, or the
/// rooms of databases from before nodes.
pub const DEFAULT_NODE: &str = "local";

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "salon.db";

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names, if Salon supports it.
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':')?.0;
        match scheme {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }

    /// How a transaction that reads and then writes begins. SQLite needs
    /// IMMEDIATE: a deferred transaction that read could not upgrade to a
    /// writer if another connection wrote meanwhile (SQLITE_BUSY_SNAPSHOT).
    /// PostgreSQL's row locks serialize the writes that matter (the outbox's
    /// sequence row is updated, not read), so a plain BEGIN does.
    fn begin_write(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }
}

/// A handle to the database. Cheap to clone; all clones share one pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// For the change watcher's own connection. Shared: handlers clone the
    /// store per request.
    options: Arc<AnyConnectOptions>,
    /// Rung after a commit that wrote status callbacks.
    doorbell: Arc<outbox::Doorbell>,
    /// This server's name among the nodes sharing the database: the rooms
    /// it creates are its own, and so are its heartbeats and what
    /// [`Store::close_abandoned`] ends.
    node: Arc<str>,
}

impl Store {
    /// Open (creating if needed) `salon.db` in `data_dir`, in WAL mode, and
    /// bring its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        Self::open_url(&sqlite_url(&data_dir.join(DATABASE_FILE))).await
    }

    /// Open a database from a URL: `sqlite:` (created if missing) or
    /// `postgres://user:password@host:port/database` (which must exist),
    /// and bring its schema up to date.
    pub async fn open_url(url: &str) -> Result<Self> {
        let backend = Backend::of_url(url).ok_or_else(|| StoreError::UnsupportedUrl {
            scheme: url
                .split_once(':')
                .map_or(url, |(s, _)| s)
                .chars()
                .take(32)
                .collect(),
        })?;
        sqlx::any::install_default_drivers();
        let url = match backend {
            // Create the file when missing (sqlx's own default for SQLite
            // options, but not for URLs).
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options: AnyConnectOptions = url
            .parse::<AnyConnectOptions>()?
            .log_statements(tracing::log::LevelFilter::Trace);
        // One connection first: an unreachable server or a wrong password
        // then reads as itself, not as the pool's "timed out".
        AnyConnection::connect_with(&options).await?.close().await?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        set_up_sqlite(conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self {
            pool,
            backend,
            options: Arc::new(options),
            doorbell: Arc::default(),
            node: Arc::from(DEFAULT_NODE),
        })
    }

    /// The same store, acting as node `node` (see [`DEFAULT_NODE`]).
    pub fn for_node(mut self, node: &str) -> Self {
        self.node = Arc::from(node);
        self
    }

    /// The node this store acts as.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Close every connection (on SQLite, checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers: for `/healthz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// SQLite's journal mode (`wal` unless the file system refused);
    /// `None` on PostgreSQL, which has none.
    pub async fn journal_mode(&self) -> Result<Option<String>> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&self.pool)
            .await?;
        Ok(Some(mode))
    }

    /// A watcher that notices commits made by *other* connections, such as
    /// `salon keys revoke` run while the server is up.
    pub async fn watch(&self) -> Result<ChangeWatcher> {
        let mut conn = AnyConnection::connect_with(&self.options).await?;
        let version = data_version(self.backend, &mut conn).await?;
        Ok(ChangeWatcher {
            conn,
            backend: self.backend,
            version,
        })
    }

    /// Begin a transaction that reads and then writes.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(self.pool.begin_with(self.backend.begin_write()).await?)
    }
}

/// A `sqlite:` URL for a file, whatever characters its path holds.
fn sqlite_url(path: &Path) -> String {
    let mut url = String::from("sqlite://");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            '#' => url.push_str("%23"),
            c => url.push(c),
        }
    }
    url
}

/// Every SQLite connection: WAL (durable across process crashes with
/// NORMAL; only a power loss can drop the last commits, never corrupt the
/// file), foreign keys enforced, and a writer waits for another up to 5 s.
async fn set_up_sqlite(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute(sqlx::raw_sql(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
    ))
    .await?;
    Ok(())
}

/// Notices when the database changed under us (see [`Store::watch`]).
pub struct ChangeWatcher {
    conn: AnyConnection,
    backend: Backend,
    version: i64,
}

impl ChangeWatcher {
    /// Whether any other connection committed since the last call. On
    /// SQLite this costs one `PRAGMA data_version`, which reads no table.
    /// PostgreSQL keeps no such counter, so there every call answers yes
    /// (the caller then rereads what it caches: a few rows).
    pub async fn changed(&mut self) -> Result<bool> {
        let version = data_version(self.backend, &mut self.conn).await?;
        let changed = self.backend == Backend::Postgres || version != self.version;
        self.version = version;
        Ok(changed)
    }

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

async fn data_version(backend: Backend, conn: &mut AnyConnection) -> Result<i64> {
    let statement = match backend {
        Backend::Sqlite => "PRAGMA data_version",
        // Still a round trip, so a lost connection shows as an error.
        Backend::Postgres => "SELECT CAST(0 AS BIGINT)",
    };
    let (version,): (i64,) = sqlx::query_as(statement).fetch_one(conn).await?;
    Ok(version)
}
