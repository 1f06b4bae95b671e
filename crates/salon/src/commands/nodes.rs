//! `salon nodes list`: the live nodes of a cluster, as Redis knows them.

use std::process::ExitCode;

use anyhow::{Result, bail};
use salon_store::Timestamp;

use crate::cli::NodesCommand;
use crate::cluster;
use crate::settings::Settings;

pub async fn run(settings: &Settings, command: NodesCommand) -> Result<ExitCode> {
    let Some(url) = &settings.redis_url else {
        bail!("`salon nodes` reads the cluster from Redis: pass --redis-url (or SALON_REDIS_URL)");
    };
    match command {
        NodesCommand::List => {
            let mut conn = cluster::connect(url).await?;
            let nodes = cluster::list(&mut conn).await?;
            let now = Timestamp::now().millis();
            println!(
                "{:<20} {:<32} {:<22} {:>6} {:>12} {:>8} {:>5} {:<8} {:<21} RENEWED",
                "NODE",
                "PUBLIC URL",
                "MEDIA",
                "ROOMS",
                "PARTICIPANTS",
                "PKT/S",
                "CPU%",
                "STATE",
                "STARTED"
            );
            for node in &nodes {
                println!(
                    "{:<20} {:<32} {:<22} {:>6} {:>12} {:>8} {:>5.0} {:<8} {:<21} {} ms ago",
                    node.id,
                    node.public_url,
                    node.media,
                    node.rooms,
                    node.participants,
                    node.packets_per_second,
                    node.cpu * 100.0,
                    if node.draining { "draining" } else { "serving" },
                    Timestamp::from_millis(node.started).to_string(),
                    now.saturating_sub(node.renewed).max(0)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
