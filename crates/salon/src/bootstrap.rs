//! Opening the data directory and settling which account this server is.
//!
//! Configured credentials win and are stored. Otherwise the stored account
//! is used. On the very first start with neither, Salon generates an account
//! SID and auth token plus an API key and secret, stores them, and prints
//! them once as a ready-to-paste environment block.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use rand::RngExt;
use rand::distr::Alphanumeric;
use salon_sid::{AccountSid, ApiKeySid};
use salon_store::{Account, ApiKeyRecord, Store, Timestamp};

use crate::settings::Settings;

/// Open the store: the shared database at `--database-url` when one is set,
/// otherwise SQLite in the data directory.
pub async fn open_store(settings: &Settings) -> Result<Store> {
    let store = match &settings.database_url {
        Some(url) => Store::open_url(url)
            .await
            .with_context(|| format!("cannot open the database at {}", redacted(url)))?,
        None => open_data_dir(&settings.data_dir).await?,
    };
    Ok(store.for_node(&settings.node_id))
}

/// A database URL fit for logs and errors: without its password.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "(an unreadable URL)".to_owned(),
    }
}

/// Create the data directory (owner-only: it holds secrets) and open the store.
async fn open_data_dir(data_dir: &Path) -> Result<Store> {
    if !data_dir.exists() {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    Store::open(data_dir)
        .await
        .with_context(|| format!("cannot open the database in {}", data_dir.display()))
}

/// Credentials generated on first start, to show the operator once.
pub struct Generated {
    pub account_sid: AccountSid,
    pub auth_token: String,
    pub api_key: ApiKeySid,
    pub api_secret: String,
}

impl Generated {
    /// Print the ready-to-paste block.
    pub fn print(&self, out: &mut impl Write, settings: &Settings) -> std::io::Result<()> {
        let place = match &settings.database_url {
            Some(url) => redacted(url),
            None => settings
                .data_dir
                .join(salon_store::DATABASE_FILE)
                .display()
                .to_string(),
        };
        writeln!(out)?;
        writeln!(
            out,
            "Salon generated development credentials. They are stored in"
        )?;
        writeln!(out, "{place} and shown only this once:")?;
        writeln!(out)?;
        writeln!(out, "    SALON_ACCOUNT_SID={}", self.account_sid)?;
        writeln!(out, "    SALON_AUTH_TOKEN={}", self.auth_token)?;
        writeln!(out, "    SALON_API_KEY={}", self.api_key)?;
        writeln!(out, "    SALON_API_SECRET={}", self.api_secret)?;
        writeln!(out)?;
        writeln!(
            out,
            "Apps written for Twilio can use the same values in their env file:"
        )?;
        writeln!(out)?;
        writeln!(out, "    TWILIO_ACCOUNT_SID={}", self.account_sid)?;
        writeln!(out, "    TWILIO_AUTH_TOKEN={}", self.auth_token)?;
        writeln!(out, "    TWILIO_API_KEY={}", self.api_key)?;
        writeln!(out, "    TWILIO_API_SECRET={}", self.api_secret)?;
        writeln!(out)?;
        Ok(())
    }
}

/// 32 lowercase hex digits, like a Twilio auth token.
fn auth_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 letters and digits, like a Twilio API key secret.
pub fn api_secret() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Settle the account this server runs as. Returns it, and the credentials
/// generated if this was the first start.
pub async fn ensure_account(
    store: &Store,
    settings: &Settings,
) -> Result<(Account, Option<Generated>)> {
    let now = Timestamp::now();
    let configured = &settings.credentials;
    let stored = store.accounts().await?;

    if let Some(sid) = configured.account_sid {
        let existing = stored.iter().find(|a| a.sid == sid);
        let account = Account {
            sid,
            auth_token: configured
                .auth_token
                .clone()
                .or_else(|| existing.map(|a| a.auth_token.clone()))
                .unwrap_or_else(auth_token),
            friendly_name: existing.map_or_else(|| "Salon".to_owned(), |a| a.friendly_name.clone()),
            date_created: existing.map_or(now, |a| a.date_created),
        };
        if existing != Some(&account) {
            store.put_account(&account).await?;
        }
        if let (Some(key), Some(secret)) = (configured.api_key, &configured.api_secret) {
            let existing = store.api_key(key).await?;
            let unchanged = existing.as_ref().is_some_and(|k| {
                k.secret == *secret && k.account_sid == sid && k.date_revoked.is_none()
            });
            if !unchanged {
                store
                    .put_api_key(&ApiKeyRecord {
                        sid: key,
                        account_sid: sid,
                        secret: secret.clone(),
                        friendly_name: "configured".to_owned(),
                        date_created: existing.map_or(now, |k| k.date_created),
                        date_revoked: None,
                    })
                    .await?;
            }
        }
        return Ok((account, None));
    }

    if let Some(account) = stored.into_iter().next() {
        return Ok((account, None));
    }

    let generated = Generated {
        account_sid: AccountSid::random(),
        auth_token: auth_token(),
        api_key: ApiKeySid::random(),
        api_secret: api_secret(),
    };
    let account = Account {
        sid: generated.account_sid,
        auth_token: generated.auth_token.clone(),
        friendly_name: "Salon".to_owned(),
        date_created: now,
    };
    store.put_account(&account).await?;
    store
        .put_api_key(&ApiKeyRecord {
            sid: generated.api_key,
            account_sid: account.sid,
            secret: generated.api_secret.clone(),
            friendly_name: "default".to_owned(),
            date_created: now,
            date_revoked: None,
        })
        .await?;
    Ok((account, Some(generated)))
}
