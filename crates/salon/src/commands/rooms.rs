//! `salon rooms …`: the running server's REST API, authenticated as the
//! account (AccountSid:AuthToken). Going through the server, not the
//! database, matters: completing a room must disconnect its participants.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::bootstrap;
use crate::cli::RoomsCommand;
use crate::settings::Settings;

pub(crate) struct Rest {
    client: reqwest::Client,
    pub(crate) base: String,
    user: String,
    password: String,
}

impl Rest {
    /// The server at `target` (or the public URL), as this data
    /// directory's account.
    pub(crate) async fn connect(
        settings: &Settings,
        target: &crate::cli::RestTarget,
    ) -> Result<Self> {
        let store = bootstrap::open_store(settings).await?;
        let (account, _) = bootstrap::ensure_account(&store, settings).await?;
        store.close().await;
        Ok(Self {
            client: reqwest::Client::new(),
            base: target
                .url
                .clone()
                .unwrap_or_else(|| settings.public_url.clone())
                .trim_end_matches('/')
                .to_owned(),
            user: account.sid.to_string(),
            password: account.auth_token.clone(),
        })
    }

    /// Every item of a list, following `next_page_url`, up to `limit`.
    pub(crate) async fn list(
        &self,
        path: &str,
        key: &str,
        mut query: Vec<(&str, String)>,
        limit: usize,
    ) -> Result<Vec<Value>> {
        query.push(("PageSize", limit.clamp(1, 1000).to_string()));
        let mut items = Vec::new();
        let mut page = self.call(Method::GET, path, &query).await?;
        loop {
            items.extend(page[key].as_array().cloned().unwrap_or_default());
            match page["meta"]["next_page_url"].as_str().map(str::to_owned) {
                Some(url) if items.len() < limit => {
                    let path = url.strip_prefix(&self.base).unwrap_or(&url).to_owned();
                    page = self.call(Method::GET, &path, &[]).await?;
                }
                _ => break,
            }
        }
        items.truncate(limit);
        Ok(items)
    }

    /// Follow a resource's `/Media` redirect and write the file to `out`.
    pub(crate) async fn download(&self, path: &str, out: &std::path::Path) -> Result<u64> {
        let url = format!("{}{path}", self.base);
        let response = self
            .client
            .get(&url)
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .with_context(|| format!("cannot reach Salon at {}", self.base))?;
        let status = response.status();
        if !status.is_success() {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            bail!(
                "{} (HTTP {})",
                body["message"].as_str().unwrap_or("download failed"),
                status.as_u16()
            );
        }
        let bytes = response.bytes().await.context("download interrupted")?;
        std::fs::write(out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
        Ok(bytes.len() as u64)
    }
}

impl Rest {
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, String)],
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .client
            .request(method.clone(), &url)
            .basic_auth(&self.user, Some(&self.password));
        if method == Method::POST {
            request = request.form(form);
        } else {
            request = request.query(form);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "cannot reach Salon at {}: is `salon serve` running? (--url sets where to look)",
                self.base
            )
        })?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("{url} answered {status} without JSON"))?;
        if status.is_success() {
            return Ok(body);
        }
        if status == StatusCode::UNAUTHORIZED {
            bail!(
                "the server refused this data directory's account credentials (is it the same --data-dir?)"
            );
        }
        bail!(
            "{} (code {}, HTTP {})",
            body["message"].as_str().unwrap_or("request failed"),
            body["code"],
            status.as_u16()
        )
    }
}

fn print_room(room: &Value) {
    let text = |key: &str| room[key].as_str().unwrap_or("-").to_owned();
    println!("sid               {}", text("sid"));
    println!("unique_name       {}", text("unique_name"));
    println!("status            {}", text("status"));
    println!("type              {}", text("type"));
    println!("max_participants  {}", room["max_participants"]);
    println!("date_created      {}", text("date_created"));
    println!("end_time          {}", text("end_time"));
    println!("url               {}", text("url"));
}

pub async fn run(settings: &Settings, command: RoomsCommand) -> Result<ExitCode> {
    let store = bootstrap::open_store(settings).await?;
    let (account, _) = bootstrap::ensure_account(&store, settings).await?;
    store.close().await;
    let target = match &command {
        RoomsCommand::Create { target, .. }
        | RoomsCommand::List { target, .. }
        | RoomsCommand::Get { target, .. }
        | RoomsCommand::Complete { target, .. } => target,
    };
    let rest = Rest {
        client: reqwest::Client::new(),
        base: target
            .url
            .clone()
            .unwrap_or_else(|| settings.public_url.clone())
            .trim_end_matches('/')
            .to_owned(),
        user: account.sid.to_string(),
        password: account.auth_token.clone(),
    };
    let json = target.json;
    match command {
        RoomsCommand::Create {
            name,
            room_type,
            max_participants,
            empty_room_timeout,
            unused_room_timeout,
            max_participant_duration,
            record,
            ..
        } => {
            let mut form = Vec::new();
            let mut add = |key, value: Option<String>| {
                if let Some(value) = value {
                    form.push((key, value));
                }
            };
            add("UniqueName", name);
            add("Type", room_type);
            add("MaxParticipants", max_participants.map(|n| n.to_string()));
            add(
                "EmptyRoomTimeout",
                empty_room_timeout.map(|n| n.to_string()),
            );
            add(
                "UnusedRoomTimeout",
                unused_room_timeout.map(|n| n.to_string()),
            );
            add(
                "MaxParticipantDuration",
                max_participant_duration.map(|n| n.to_string()),
            );
            add("RecordParticipantsOnConnect", record.then(|| "true".into()));
            let room = rest.call(Method::POST, "/v1/Rooms", &form).await?;
            show(json, &room, print_room);
        }
        RoomsCommand::List {
            status,
            name,
            limit,
            ..
        } => {
            let mut query = vec![
                ("Status", status),
                ("PageSize", limit.clamp(1, 1000).to_string()),
            ];
            if let Some(name) = name {
                query.push(("UniqueName", name));
            }
            let mut rooms = Vec::new();
            let mut page = rest.call(Method::GET, "/v1/Rooms", &query).await?;
            loop {
                rooms.extend(page["rooms"].as_array().cloned().unwrap_or_default());
                let next = page["meta"]["next_page_url"].as_str().map(str::to_owned);
                match next {
                    Some(url) if rooms.len() < limit => {
                        let path = url.strip_prefix(&rest.base).unwrap_or(&url).to_owned();
                        page = rest.call(Method::GET, &path, &[]).await?;
                    }
                    _ => break,
                }
            }
            rooms.truncate(limit);
            if json {
                println!("{}", serde_json::to_string_pretty(&rooms)?);
            } else {
                println!(
                    "{:<34}  {:<11}  {:<20}  UNIQUE NAME",
                    "SID", "STATUS", "CREATED"
                );
                for room in &rooms {
                    println!(
                        "{:<34}  {:<11}  {:<20}  {}",
                        room["sid"].as_str().unwrap_or("-"),
                        room["status"].as_str().unwrap_or("-"),
                        room["date_created"].as_str().unwrap_or("-"),
                        room["unique_name"].as_str().unwrap_or("-")
                    );
                }
            }
        }
        RoomsCommand::Get { room, .. } => {
            let room = rest
                .call(
                    Method::GET,
                    &format!("/v1/Rooms/{}", path_segment(&room)),
                    &[],
                )
                .await?;
            show(json, &room, print_room);
        }
        RoomsCommand::Complete { room, .. } => {
            let form = [("Status", "completed".to_owned())];
            let room = rest
                .call(
                    Method::POST,
                    &format!("/v1/Rooms/{}", path_segment(&room)),
                    &form,
                )
                .await?;
            show(json, &room, print_room);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn show(json: bool, value: &Value, human: fn(&Value)) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        human(value);
    }
}

/// Percent-encode a room name for use as one path segment.
pub(crate) fn path_segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
