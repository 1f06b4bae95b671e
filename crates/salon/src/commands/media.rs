//! `salon recordings …` and `salon compositions …`: the running server's
//! REST API, like `salon rooms`.

use std::process::ExitCode;

use anyhow::Result;
use reqwest::Method;
use serde_json::Value;

use super::rooms::{Rest, path_segment, show};
use crate::cli::{CompositionsCommand, RecordingsCommand};
use crate::settings::Settings;

fn print_recording(r: &Value) {
    let text = |key: &str| {
        r[key]
            .as_str()
            .map_or_else(|| r[key].to_string(), str::to_owned)
    };
    for key in [
        "sid",
        "status",
        "type",
        "codec",
        "container_format",
        "track_name",
        "source_sid",
        "duration",
        "size",
        "offset",
        "date_created",
    ] {
        println!("{key:<17} {}", text(key));
    }
    println!(
        "{:<17} {}",
        "room_sid",
        r["grouping_sids"]["room_sid"].as_str().unwrap_or("-")
    );
    println!(
        "{:<17} {}",
        "participant_sid",
        r["grouping_sids"]["participant_sid"]
            .as_str()
            .unwrap_or("-")
    );
}

fn print_composition(c: &Value) {
    let text = |key: &str| {
        c[key]
            .as_str()
            .map_or_else(|| c[key].to_string(), str::to_owned)
    };
    for key in [
        "sid",
        "status",
        "room_sid",
        "format",
        "resolution",
        "progress",
        "duration",
        "size",
        "date_created",
    ] {
        println!("{key:<13} {}", text(key));
    }
}

pub async fn recordings(settings: &Settings, command: RecordingsCommand) -> Result<ExitCode> {
    let target = match &command {
        RecordingsCommand::List { target, .. }
        | RecordingsCommand::Get { target, .. }
        | RecordingsCommand::Download { target, .. } => target.clone(),
    };
    let rest = Rest::connect(settings, &target).await?;
    match command {
        RecordingsCommand::List {
            room,
            status,
            limit,
            ..
        } => {
            let path = match &room {
                Some(room) => format!("/v1/Rooms/{}/Recordings", path_segment(room)),
                None => "/v1/Recordings".to_owned(),
            };
            let mut query = Vec::new();
            if let Some(status) = status {
                query.push(("Status", status));
            }
            let list = rest.list(&path, "recordings", query, limit).await?;
            if target.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<34}  {:<10}  {:<5}  {:>8}  {:<34}  TRACK",
                    "SID", "STATUS", "CODEC", "SECONDS", "ROOM"
                );
                for r in &list {
                    println!(
                        "{:<34}  {:<10}  {:<5}  {:>8}  {:<34}  {}",
                        r["sid"].as_str().unwrap_or("-"),
                        r["status"].as_str().unwrap_or("-"),
                        r["codec"].as_str().unwrap_or("-"),
                        r["duration"].as_u64().map_or("-".into(), |d| d.to_string()),
                        r["grouping_sids"]["room_sid"].as_str().unwrap_or("-"),
                        r["track_name"].as_str().unwrap_or("-"),
                    );
                }
            }
        }
        RecordingsCommand::Get { recording, .. } => {
            let path = format!("/v1/Recordings/{}", path_segment(&recording));
            let r = rest.call(Method::GET, &path, &[]).await?;
            show(target.json, &r, print_recording);
        }
        RecordingsCommand::Download {
            recording, output, ..
        } => {
            let path = format!("/v1/Recordings/{}", path_segment(&recording));
            let r = rest.call(Method::GET, &path, &[]).await?;
            let out = output.unwrap_or_else(|| {
                format!(
                    "{}.{}",
                    r["sid"].as_str().unwrap_or("recording"),
                    r["container_format"].as_str().unwrap_or("mkv")
                )
                .into()
            });
            let size = rest.download(&format!("{path}/Media"), &out).await?;
            println!("{} ({size} bytes)", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn compositions(settings: &Settings, command: CompositionsCommand) -> Result<ExitCode> {
    let target = match &command {
        CompositionsCommand::Create { target, .. }
        | CompositionsCommand::List { target, .. }
        | CompositionsCommand::Download { target, .. } => target.clone(),
    };
    let rest = Rest::connect(settings, &target).await?;
    match command {
        CompositionsCommand::Create {
            room,
            layout,
            audio,
            format,
            resolution,
            trim,
            ..
        } => {
            let form = [
                ("RoomSid", room),
                ("VideoLayout", layout),
                ("AudioSources", audio),
                ("Format", format),
                ("Resolution", resolution),
                ("Trim", trim.to_string()),
            ];
            let c = rest.call(Method::POST, "/v1/Compositions", &form).await?;
            show(target.json, &c, print_composition);
        }
        CompositionsCommand::List { room, limit, .. } => {
            let mut query = Vec::new();
            if let Some(room) = room {
                query.push(("RoomSid", room));
            }
            let list = rest
                .list("/v1/Compositions", "compositions", query, limit)
                .await?;
            if target.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<34}  {:<10}  {:<6}  {:>8}  ROOM",
                    "SID", "STATUS", "FORMAT", "SECONDS"
                );
                for c in &list {
                    println!(
                        "{:<34}  {:<10}  {:<6}  {:>8}  {}",
                        c["sid"].as_str().unwrap_or("-"),
                        c["status"].as_str().unwrap_or("-"),
                        c["format"].as_str().unwrap_or("-"),
                        c["duration"].as_u64().map_or("-".into(), |d| d.to_string()),
                        c["room_sid"].as_str().unwrap_or("-"),
                    );
                }
            }
        }
        CompositionsCommand::Download {
            composition,
            output,
            ..
        } => {
            let path = format!("/v1/Compositions/{}", path_segment(&composition));
            let c = rest.call(Method::GET, &path, &[]).await?;
            let out = output.unwrap_or_else(|| {
                format!(
                    "{}.{}",
                    c["sid"].as_str().unwrap_or("composition"),
                    c["format"].as_str().unwrap_or("mp4")
                )
                .into()
            });
            let size = rest.download(&format!("{path}/Media"), &out).await?;
            println!("{} ({size} bytes)", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
