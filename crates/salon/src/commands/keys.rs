//! `salon keys create|list|revoke`: straight to the store. A running server
//! notices the change within `salon_server::RELOAD_INTERVAL`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use salon_sid::ApiKeySid;
use salon_store::{ApiKeyRecord, Timestamp};

use crate::bootstrap;
use crate::cli::KeysCommand;
use crate::settings::Settings;

pub async fn run(settings: &Settings, command: KeysCommand) -> Result<ExitCode> {
    let store = bootstrap::open_store(settings).await?;
    let (account, generated) = bootstrap::ensure_account(&store, settings).await?;
    if let Some(generated) = generated {
        generated.print(&mut std::io::stderr().lock(), settings)?;
    }
    let result = match command {
        KeysCommand::Create { name } => {
            let key = ApiKeyRecord {
                sid: ApiKeySid::random(),
                account_sid: account.sid,
                secret: bootstrap::api_secret(),
                friendly_name: name,
                date_created: Timestamp::now(),
                date_revoked: None,
            };
            store.put_api_key(&key).await?;
            println!(
                "Created API key {}. Its secret is shown only this once:\n",
                key.sid
            );
            println!("    SALON_API_KEY={}", key.sid);
            println!("    SALON_API_SECRET={}", key.secret);
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::List => {
            let keys: Vec<ApiKeyRecord> = store
                .api_keys()
                .await?
                .into_iter()
                .filter(|k| k.account_sid == account.sid)
                .collect();
            println!("account {}", account.sid);
            println!("{:<34}  {:<20}  {:<20}  STATUS", "SID", "NAME", "CREATED");
            for key in keys {
                let status = match key.date_revoked {
                    Some(at) => format!("revoked {at}"),
                    None => "active".to_owned(),
                };
                println!(
                    "{:<34}  {:<20}  {:<20}  {status}",
                    key.sid,
                    key.friendly_name,
                    key.date_created.to_string()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Revoke { sid } => {
            let sid: ApiKeySid = sid.parse()?;
            match store.api_key(sid).await? {
                Some(key) if key.account_sid != account.sid => {
                    bail!("API key {sid} belongs to another account")
                }
                Some(key) if key.date_revoked.is_some() => {
                    bail!("API key {sid} is already revoked")
                }
                Some(_) => {
                    store.revoke_api_key(sid, Timestamp::now()).await?;
                    println!("Revoked API key {sid}.");
                    Ok(ExitCode::SUCCESS)
                }
                None => bail!("no API key {sid}"),
            }
        }
    };
    store.close().await;
    result
}
