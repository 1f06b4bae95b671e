//! The store's tests run on both databases: each test is an `async fn` that
//! takes a [`Db`], and [`on_both_databases!`] makes a SQLite and a
//! PostgreSQL test of it.

#![allow(dead_code)]

pub mod postgres;

use salon_store::Store;

/// An empty database for one test.
pub enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Db {
    pub fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().expect("a temporary directory"))
    }

    /// `None` when PostgreSQL is skipped (see [`postgres::cluster`]).
    pub async fn postgres() -> Option<Db> {
        postgres::fresh_database().await.map(Db::Postgres)
    }

    /// A store on this database (each call a new pool, as another process
    /// would open it).
    pub async fn open(&self) -> Store {
        match self {
            Db::Sqlite(dir) => Store::open(dir.path()).await.expect("open SQLite"),
            Db::Postgres(url) => Store::open_url(url).await.expect("open PostgreSQL"),
        }
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, Db::Sqlite(_))
    }
}

/// For each `async fn name(db: Db)`, a test `sqlite::name` and a test
/// `postgres::name`.
#[macro_export]
macro_rules! on_both_databases {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::common::Db::sqlite()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    if let Some(db) = $crate::common::Db::postgres().await {
                        super::$test(db).await
                    }
                }
            )*
        }
    };
}
