//! `salon token create|inspect`.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use salon_server::{Credentials, Metrics};
use salon_sid::ApiKeySid;
use salon_store::Timestamp;
use salon_token::{Algorithm, Grant, MintOptions};

use crate::bootstrap;
use crate::cli::TokenCommand;
use crate::settings::Settings;

pub async fn run(settings: &Settings, command: TokenCommand) -> Result<ExitCode> {
    let store = bootstrap::open_store(settings).await?;
    let (account, generated) = bootstrap::ensure_account(&store, settings).await?;
    if let Some(generated) = generated {
        // stdout is for the token; the one-time credentials go to stderr.
        generated.print(&mut std::io::stderr().lock(), settings)?;
    }
    let credentials = Credentials::load(&store, account.sid, Arc::new(Metrics::new())).await?;
    store.close().await;
    match command {
        TokenCommand::Create {
            identity,
            room,
            ttl,
            key,
            algorithm,
        } => {
            let key = match key {
                None => credentials
                    .signing_key(account.sid)
                    .context("no active API key: create one with `salon keys create`")?,
                Some(sid) => {
                    let sid: ApiKeySid = sid.parse()?;
                    match credentials.key(sid) {
                        Some(key) if !key.is_revoked() => key,
                        Some(_) => bail!("API key {sid} is revoked"),
                        None => bail!("no API key {sid} in account {}", account.sid),
                    }
                }
            };
            let mut grant = Grant::new(identity);
            if let Some(room) = room {
                grant = grant.in_room(room);
            }
            let options = MintOptions {
                ttl: Duration::from_secs(ttl),
                algorithm: algorithm.parse::<Algorithm>()?,
                ..MintOptions::default()
            };
            let token = salon_token::mint(&key, &grant, unix_now(), &options)?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Inspect { token } => inspect(&credentials, &read_token(token)?),
    }
}

fn read_token(arg: String) -> Result<String> {
    if arg != "-" {
        return Ok(arg.trim().to_owned());
    }
    let mut text = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .context("cannot read the token from standard input")?;
    Ok(text.trim().to_owned())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn when(unix: u64) -> String {
    let at = Timestamp::from_millis(i64::try_from(unix).unwrap_or(i64::MAX / 1000) * 1000);
    let now = unix_now();
    let relative = if unix == now {
        "now".to_owned()
    } else if unix > now {
        format!("in {} s", unix - now)
    } else {
        format!("{} s ago", now - unix)
    };
    format!("{at} ({relative})")
}

fn inspect(credentials: &Credentials, token: &str) -> Result<ExitCode> {
    match salon_token::decode_unverified(token) {
        Ok((header, payload)) => {
            println!("header:\n{}", serde_json::to_string_pretty(&header)?);
            println!("payload:\n{}", serde_json::to_string_pretty(&payload)?);
        }
        Err(_) => println!("(the token cannot be decoded)"),
    }
    match credentials.verify(token) {
        Ok(verified) => {
            println!("verdict: valid");
            println!("  identity   {}", verified.identity);
            println!(
                "  room       {}",
                verified.room.as_deref().unwrap_or("any room")
            );
            println!(
                "  signed by  {} ({})",
                verified.key,
                verified.algorithm.as_str()
            );
            println!("  account    {}", verified.account);
            match verified.issued_at {
                Some(iat) => println!("  issued     {}", when(iat)),
                None => println!("  issued     not stated (twilio-python omits iat)"),
            }
            if let Some(nbf) = verified.not_before {
                println!("  not before {}", when(nbf));
            }
            println!("  expires    {}", when(verified.expires_at));
            Ok(ExitCode::SUCCESS)
        }
        Err(rejection) => {
            println!(
                "verdict: rejected with {} ({})",
                rejection.code(),
                rejection.message()
            );
            println!("  why: {rejection}");
            Ok(ExitCode::from(1))
        }
    }
}
