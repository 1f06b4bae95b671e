//! Twilio's CompositionHooks resource, and what makes hooks fire.
//!
//! `POST /v1/CompositionHooks` (`FriendlyName`, unique per account;
//! `Enabled`, default true; and what a composition takes: `VideoLayout`,
//! `AudioSources`, `Format`, `Resolution`, `Trim`, `StatusCallback`,
//! `StatusCallbackMethod`), `GET` list (filters `Enabled`, `FriendlyName`,
//! `DateCreatedAfter`, `DateCreatedBefore`), `GET`, `POST` (update: the
//! parameters given replace the hook's) and `DELETE
//! /v1/CompositionHooks/{Sid}`.
//!
//! [`fire_when_rooms_end`] follows the room events: when a room ends, it
//! waits (at most [`SETTLE`]) for the room's recordings to finish, then
//! starts one composition per enabled hook, as `POST /v1/Compositions`
//! would. A room without completed recordings makes no composition.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use salon_room::Event;
use salon_sid::{CompositionHookSid, RoomSid};
use salon_store::{
    CompositionHookFilter, CompositionHookRecord, PageRequest, RecordingFilter, RecordingStatus,
    Timestamp,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::PathParams;
use super::compositions::{Spec, start};
use super::error::ApiError;
use super::params::{Params, excerpt};
use super::resources::{Listing, Urls};
use crate::AppState;

/// How long a room's recordings may take to finish after it ends before
/// its hooks fire anyway (with what completed).
pub const SETTLE: Duration = Duration::from_secs(30);

fn hook_json(h: &CompositionHookRecord, urls: &Urls) -> Value {
    let sid = h.sid.as_str();
    json!({
        "account_sid": h.account_sid.as_str(),
        "friendly_name": h.friendly_name,
        "enabled": h.enabled,
        "date_created": h.date_created.to_string(),
        "date_updated": h.date_updated.to_string(),
        "sid": sid,
        "audio_sources": serde_json::from_str::<Value>(&h.audio_sources).unwrap_or(json!([])),
        "audio_sources_excluded": [],
        "video_layout": serde_json::from_str::<Value>(&h.video_layout).unwrap_or(json!({})),
        "resolution": h.resolution,
        "trim": h.trim,
        "format": h.format,
        "status_callback": h.status_callback,
        "status_callback_method": h.status_callback_method,
        "url": format!("{}/v1/CompositionHooks/{sid}", urls.base()),
    })
}

/// The composition a hook makes.
fn spec_of(h: &CompositionHookRecord) -> Result<Spec, ApiError> {
    Spec::stored(
        &h.video_layout,
        &h.audio_sources,
        &h.format,
        &h.resolution,
        h.trim,
        h.status_callback.clone(),
        &h.status_callback_method,
    )
}

fn friendly_name(params: &Params) -> Result<Option<String>, ApiError> {
    match params.text("FriendlyName") {
        None => Ok(None),
        Some(name) if name.is_empty() || name.chars().count() > 100 => Err(
            ApiError::invalid_parameter("FriendlyName", "1 to 100 characters"),
        ),
        Some(name) => Ok(Some(name.to_owned())),
    }
}

fn name_taken(e: salon_store::StoreError) -> ApiError {
    if e.is_unique_violation() {
        ApiError::invalid_parameter("FriendlyName", "another composition hook has this name")
    } else {
        e.into()
    }
}

/// `POST /v1/CompositionHooks`
pub async fn create(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let name = friendly_name(&params)?
        .ok_or_else(|| ApiError::invalid_parameter("FriendlyName", "is required"))?;
    let spec = Spec::parse(&params)?;
    let now = Timestamp::now();
    let hook = CompositionHookRecord {
        sid: CompositionHookSid::random(),
        account_sid: state.account,
        friendly_name: name,
        enabled: params.boolean("Enabled")?.unwrap_or(true),
        video_layout: spec.layout_text,
        audio_sources: serde_json::to_string(&spec.audio_sources).map_err(ApiError::internal)?,
        format: spec.format,
        resolution: spec.resolution,
        trim: spec.trim,
        status_callback: spec.status_callback,
        status_callback_method: spec.status_callback_method,
        date_created: now,
        date_updated: now,
    };
    state
        .store
        .insert_composition_hook(&hook)
        .await
        .map_err(name_taken)?;
    Ok((StatusCode::CREATED, Json(hook_json(&hook, &state.urls))).into_response())
}

async fn find(state: &AppState, id: &str) -> Result<CompositionHookRecord, ApiError> {
    let not_found = || ApiError::not_found(&format!("/v1/CompositionHooks/{}", excerpt(id)));
    let sid: CompositionHookSid = id.parse().map_err(|_| not_found())?;
    state
        .store
        .composition_hook(sid)
        .await?
        .filter(|h| h.account_sid == state.account)
        .ok_or_else(not_found)
}

/// `GET /v1/CompositionHooks/{Sid}`
pub async fn fetch(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<impl IntoResponse, ApiError> {
    let h = find(&state, &id).await?;
    Ok(Json(hook_json(&h, &state.urls)))
}

/// `POST /v1/CompositionHooks/{Sid}`: the parameters given replace the
/// hook's; the result must still be a valid composition.
pub async fn update(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let mut h = find(&state, &id).await?;
    let audio: Vec<String> = params
        .all("AudioSources")
        .iter()
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let current: Vec<String> = serde_json::from_str(&h.audio_sources).unwrap_or_default();
    let layout = params
        .text("VideoLayout")
        .map(str::to_owned)
        .unwrap_or_else(|| h.video_layout.clone());
    let spec = Spec::check(
        (layout != "{}").then_some(layout.as_str()),
        if params.all("AudioSources").is_empty() {
            current
        } else {
            audio
        },
        params.text("Format").unwrap_or(&h.format),
        params.text("Resolution").unwrap_or(&h.resolution),
        params.boolean("Trim")?.unwrap_or(h.trim),
        params
            .text("StatusCallback")
            .map(str::to_owned)
            .or_else(|| h.status_callback.clone()),
        params
            .text("StatusCallbackMethod")
            .unwrap_or(&h.status_callback_method),
    )?;
    if let Some(name) = friendly_name(&params)? {
        h.friendly_name = name;
    }
    h.enabled = params.boolean("Enabled")?.unwrap_or(h.enabled);
    h.video_layout = spec.layout_text;
    h.audio_sources = serde_json::to_string(&spec.audio_sources).map_err(ApiError::internal)?;
    h.format = spec.format;
    h.resolution = spec.resolution;
    h.trim = spec.trim;
    h.status_callback = spec.status_callback;
    h.status_callback_method = spec.status_callback_method;
    h.date_updated = Timestamp::now();
    state
        .store
        .update_composition_hook(&h)
        .await
        .map_err(name_taken)?;
    Ok(Json(hook_json(&h, &state.urls)))
}

/// `DELETE /v1/CompositionHooks/{Sid}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let h = find(&state, &id).await?;
    state.store.delete_composition_hook(h.sid).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/CompositionHooks`
pub async fn list(
    State(state): State<AppState>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let filter = CompositionHookFilter {
        enabled: params.boolean("Enabled")?,
        friendly_name: params.text("FriendlyName").map(str::to_owned),
        created_after: params.datetime("DateCreatedAfter")?,
        created_before: params.datetime("DateCreatedBefore")?,
    };
    let request = params.page()?;
    let page = state
        .store
        .composition_hooks(state.account, &filter, &request)
        .await?;
    let mut filters = Vec::new();
    for name in [
        "Enabled",
        "FriendlyName",
        "DateCreatedAfter",
        "DateCreatedBefore",
    ] {
        if let Some(value) = params.text(name) {
            filters.push((name, value.to_owned()));
        }
    }
    let listing = Listing {
        collection: format!("{}/v1/CompositionHooks", state.urls.base()),
        key: "composition_hooks",
        filters,
        page_size: request.size,
        page_number: request.number,
        page_token: request.after.as_ref(),
    };
    Ok(Json(listing.body(&page, |h| hook_json(h, &state.urls))))
}

/// Fire the account's enabled hooks for each room that ends (see the
/// module docs). Runs until the room service stops or `stop` turns true;
/// then it fires for the rooms already ended (the shutdown ends every
/// room, and those rooms are composed too) and waits, at most [`SETTLE`]
/// and a little more, for what it started to write its compositions, so
/// that the store is not closed under them. The compositions themselves
/// run at the next start if the shutdown cut them short
/// ([`super::compositions::resume_unfinished`]).
pub async fn fire_when_rooms_end(
    state: AppState,
    mut events: mpsc::UnboundedReceiver<Arc<Event>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut firing = JoinSet::new();
    let take = |event: &Event, firing: &mut JoinSet<()>| {
        if let Event::RoomEnded { room, .. } = event {
            firing.spawn(fire(state.clone(), *room));
        }
    };
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => take(&event, &mut firing),
                None => break,
            },
            _ = stop.wait_for(|stopped| *stopped) => break,
            Some(_) = firing.join_next(), if !firing.is_empty() => {}
        }
    }
    while let Ok(event) = events.try_recv() {
        take(&event, &mut firing);
    }
    let all = async { while firing.join_next().await.is_some() {} };
    if tokio::time::timeout(SETTLE + Duration::from_secs(5), all)
        .await
        .is_err()
    {
        tracing::warn!("stopped before every composition hook had fired");
    }
}

async fn fire(state: AppState, room: RoomSid) {
    let hooks = match state.store.enabled_composition_hooks(state.account).await {
        Ok(hooks) if hooks.is_empty() => return,
        Ok(hooks) => hooks,
        Err(e) => {
            tracing::error!(%room, error = %e, "could not read the composition hooks");
            return;
        }
    };
    // The room's recordings finish a moment after it ends.
    let deadline = tokio::time::Instant::now() + SETTLE;
    let processing = RecordingFilter {
        status: Some(RecordingStatus::Processing),
        room_sid: Some(room),
        ..RecordingFilter::default()
    };
    loop {
        let busy = state
            .store
            .recordings(&processing, &PageRequest::default())
            .await
            .map(|p| !p.items.is_empty())
            .unwrap_or(false);
        if !busy || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let Ok(Some(record)) = state.store.room(room).await else {
        return;
    };
    for hook in hooks {
        let started = match spec_of(&hook) {
            Ok(spec) => start(&state, &record, spec).await,
            Err(e) => Err(e),
        };
        match started {
            Ok(c) => {
                tracing::info!(%room, hook = %hook.sid, composition = %c.sid, "composition hook fired")
            }
            Err(e) => {
                tracing::info!(%room, hook = %hook.sid, error = ?e, "composition hook made no composition")
            }
        }
    }
}
