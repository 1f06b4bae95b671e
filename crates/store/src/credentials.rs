//! Accounts and API keys: who may mint tokens and call the REST API.

use salon_sid::{AccountSid, ApiKeySid};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::records::Timestamp;
use crate::{Result, Store, StoreError};

/// An account: the owner of API keys and rooms. `auth_token` authenticates
/// REST calls as `AccountSid:AuthToken`.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub sid: AccountSid,
    pub auth_token: String,
    pub friendly_name: String,
    pub date_created: Timestamp,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("sid", &self.sid)
            .field("auth_token", &"<redacted>")
            .field("friendly_name", &self.friendly_name)
            .finish()
    }
}

/// An API key as stored. The secret signs access tokens and authenticates
/// REST calls as `KeySid:Secret`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub sid: ApiKeySid,
    pub account_sid: AccountSid,
    pub secret: String,
    pub friendly_name: String,
    pub date_created: Timestamp,
    pub date_revoked: Option<Timestamp>,
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("sid", &self.sid)
            .field("account_sid", &self.account_sid)
            .field("secret", &"<redacted>")
            .field("friendly_name", &self.friendly_name)
            .field("date_revoked", &self.date_revoked)
            .finish()
    }
}

fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table,
        detail: detail.to_string(),
    }
}

fn account_from(row: &AnyRow) -> Result<Account> {
    let sid: &str = row.try_get("sid")?;
    Ok(Account {
        sid: sid.parse().map_err(|e| corrupt("accounts", e))?,
        auth_token: row.try_get("auth_token")?,
        friendly_name: row.try_get("friendly_name")?,
        date_created: Timestamp::from_millis(row.try_get("date_created")?),
    })
}

fn key_from(row: &AnyRow) -> Result<ApiKeyRecord> {
    let sid: &str = row.try_get("sid")?;
    let account: &str = row.try_get("account_sid")?;
    Ok(ApiKeyRecord {
        sid: sid.parse().map_err(|e| corrupt("api_keys", e))?,
        account_sid: account.parse().map_err(|e| corrupt("api_keys", e))?,
        secret: row.try_get("secret")?,
        friendly_name: row.try_get("friendly_name")?,
        date_created: Timestamp::from_millis(row.try_get("date_created")?),
        date_revoked: row
            .try_get::<Option<i64>, _>("date_revoked")?
            .map(Timestamp::from_millis),
    })
}

impl Store {
    /// Every account, oldest first.
    pub async fn accounts(&self) -> Result<Vec<Account>> {
        let rows = sqlx::query("SELECT * FROM accounts ORDER BY date_created, sid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(account_from).collect()
    }

    /// Add an account, or set the auth token and name of an existing one.
    pub async fn put_account(&self, account: &Account) -> Result<()> {
        sqlx::query(
            "INSERT INTO accounts (sid, auth_token, friendly_name, date_created, date_updated)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (sid) DO UPDATE SET auth_token = excluded.auth_token,
                 friendly_name = excluded.friendly_name, date_updated = excluded.date_updated",
        )
        .bind(account.sid.as_str())
        .bind(&account.auth_token)
        .bind(&account.friendly_name)
        .bind(account.date_created.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every API key, revoked ones included, oldest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let rows = sqlx::query("SELECT * FROM api_keys ORDER BY date_created, sid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_from).collect()
    }

    /// One API key by SID.
    pub async fn api_key(&self, sid: ApiKeySid) -> Result<Option<ApiKeyRecord>> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE sid = $1")
            .bind(sid.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_from).transpose()
    }

    /// Add an API key, or replace the secret of an existing one (which
    /// also un-revokes it: the operator configured it explicitly).
    pub async fn put_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys
             (sid, account_sid, secret, friendly_name, date_created, date_updated, date_revoked)
             VALUES ($1, $2, $3, $4, $5, $5, $6)
             ON CONFLICT (sid) DO UPDATE SET account_sid = excluded.account_sid,
                 secret = excluded.secret, friendly_name = excluded.friendly_name,
                 date_updated = excluded.date_updated, date_revoked = excluded.date_revoked",
        )
        .bind(key.sid.as_str())
        .bind(key.account_sid.as_str())
        .bind(&key.secret)
        .bind(&key.friendly_name)
        .bind(key.date_created.millis())
        .bind(key.date_revoked.map(Timestamp::millis))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Revoke an API key at `at`. Returns `false` if no such key exists or
    /// it was already revoked.
    pub async fn revoke_api_key(&self, sid: ApiKeySid, at: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET date_revoked = $1, date_updated = $1
             WHERE sid = $2 AND date_revoked IS NULL",
        )
        .bind(at.millis())
        .bind(sid.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
