//! Twilio's Compositions resource: `POST /v1/Compositions` (`RoomSid`,
//! `VideoLayout`, `AudioSources`, `Format` mp4|webm, `Resolution`,
//! `Trim`, `StatusCallback`, `StatusCallbackMethod`), `GET` list (filters
//! `Status`, `RoomSid`, `DateCreatedAfter`, `DateCreatedBefore`), `GET`
//! and `DELETE /v1/Compositions/{Sid}`, and `GET …/Media` (a redirect to a
//! signed link, as for recordings).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use salon_sid::{CompositionSid, RoomSid};
use salon_store::{
    CallbackEvent, CompositionFilter, CompositionRecord, PageRequest, RecordingFilter,
    RecordingRecord, RecordingStatus, RoomRecord, RoomStatus, Timestamp,
};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::PathParams;
use super::error::ApiError;
use super::params::{Params, excerpt};
use super::resources::{Listing, Urls};
use super::rooms::find_room;
use crate::AppState;
use crate::composition::{Job, Layout, Plan};

fn composition_json(c: &CompositionRecord, urls: &Urls) -> Value {
    let sid = c.sid.as_str();
    let layout: Value = serde_json::from_str(&c.video_layout).unwrap_or(json!({}));
    let audio: Value = serde_json::from_str(&c.audio_sources).unwrap_or(json!([]));
    let done = c.status == "completed";
    json!({
        "account_sid": c.account_sid.as_str(),
        "status": c.status,
        "date_created": c.date_created.to_string(),
        "date_completed": c.date_completed.map(|t| t.to_string()),
        "date_deleted": (c.status == "deleted").then(|| c.date_updated.to_string()),
        "sid": sid,
        "room_sid": c.room_sid.as_str(),
        "audio_sources": audio,
        "audio_sources_excluded": [],
        "video_layout": layout,
        "resolution": c.resolution,
        "trim": c.trim,
        "format": c.format,
        "bitrate": if done && c.duration_ms > 0 { c.size * 8 / c.duration_ms } else { 0 },
        "size": c.size,
        "duration": if done { c.duration_ms.div_ceil(1000) } else { 0 },
        "media_external_location": null,
        "status_callback": c.status_callback,
        "status_callback_method": c.status_callback_method,
        "progress": c.progress,
        "url": format!("{}/v1/Compositions/{sid}", urls.base()),
        "links": { "media": format!("{}/v1/Compositions/{sid}/Media", urls.base()) },
    })
}

/// What a composition is made of and how, as a request (or a hook) says.
#[derive(Debug, Clone)]
pub struct Spec {
    pub layout: Layout,
    /// `VideoLayout` as given (`{}` without one).
    pub layout_text: String,
    pub audio_sources: Vec<String>,
    pub format: String,
    pub resolution: String,
    pub width: u32,
    pub height: u32,
    pub trim: bool,
    pub status_callback: Option<String>,
    pub status_callback_method: String,
}

impl Spec {
    /// Read and check `VideoLayout`, `AudioSources`, `Format`, `Resolution`,
    /// `Trim`, `StatusCallback` and `StatusCallbackMethod` (20001 when bad).
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let audio_sources: Vec<String> = params
            .all("AudioSources")
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        Self::check(
            params.text("VideoLayout"),
            audio_sources,
            params.text("Format").unwrap_or("webm"),
            params.text("Resolution").unwrap_or("640x480"),
            params.boolean("Trim")?.unwrap_or(true),
            params.text("StatusCallback").map(str::to_owned),
            params.text("StatusCallbackMethod").unwrap_or("POST"),
        )
    }

    /// The spec as the store keeps it (a composition's or a hook's row:
    /// `VideoLayout` text, `{}` for none, and `AudioSources` as JSON).
    pub fn stored(
        layout_text: &str,
        audio_sources: &str,
        format: &str,
        resolution: &str,
        trim: bool,
        status_callback: Option<String>,
        method: &str,
    ) -> Result<Self, ApiError> {
        Self::check(
            (layout_text != "{}").then_some(layout_text),
            serde_json::from_str(audio_sources).unwrap_or_default(),
            format,
            resolution,
            trim,
            status_callback,
            method,
        )
    }

    /// Check the parts of a spec.
    pub fn check(
        layout_text: Option<&str>,
        audio_sources: Vec<String>,
        format: &str,
        resolution: &str,
        trim: bool,
        status_callback: Option<String>,
        method: &str,
    ) -> Result<Self, ApiError> {
        let layout = Layout::parse(layout_text)
            .map_err(|e| ApiError::invalid_parameter("VideoLayout", e))?;
        if layout == Layout::None && audio_sources.is_empty() {
            return Err(ApiError::invalid_parameter(
                "VideoLayout",
                "give a VideoLayout, AudioSources or both",
            ));
        }
        if !matches!(format, "mp4" | "webm") {
            return Err(ApiError::invalid_parameter("Format", "not mp4 or webm"));
        }
        let (width, height) = resolution
            .split_once('x')
            .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
            .filter(|(w, h)| (16..=1920).contains(w) && (16..=1920).contains(h) && w * h <= 921_600)
            .ok_or_else(|| {
                ApiError::invalid_parameter(
                    "Resolution",
                    "WIDTHxHEIGHT, each 16 to 1920, at most 921600 pixels",
                )
            })?;
        if let Some(url) = &status_callback
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ApiError::invalid_parameter(
                "StatusCallback",
                "not an http(s) URL",
            ));
        }
        let method = method.to_ascii_uppercase();
        if !matches!(method.as_str(), "GET" | "POST") {
            return Err(ApiError::invalid_parameter(
                "StatusCallbackMethod",
                "not GET or POST",
            ));
        }
        Ok(Self {
            layout,
            layout_text: layout_text.unwrap_or("{}").to_owned(),
            audio_sources,
            format: format.to_owned(),
            resolution: resolution.to_owned(),
            width,
            height,
            trim,
            status_callback,
            status_callback_method: method,
        })
    }
}

/// `POST /v1/Compositions`. A composition is made where the room's
/// recordings are: on a cluster, the node that ran the room.
pub async fn create(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let room_id = params
        .text("RoomSid")
        .ok_or_else(|| ApiError::invalid_parameter("RoomSid", "is required"))?;
    let room = find_room(&state, room_id).await?;
    Spec::parse(&params)?;
    let writer = state.store.room_node(room.sid).await?;
    let dir = state.recordings.dir().to_path_buf();
    let record = match crate::cluster::file_node(&state, writer, &room_dir(&dir, room.sid)).await? {
        None => create_here(&state, &params).await?,
        Some(node) => {
            let command = crate::cluster::Command::CreateComposition {
                params: params.pairs(),
            };
            let sid = crate::cluster::run_on(&state, &node.id, command)
                .await?
                .composition
                .ok_or_else(|| ApiError::internal("a node queued a composition without a SID"))?;
            state
                .store
                .composition(sid)
                .await?
                .ok_or_else(|| ApiError::internal("queued composition not recorded"))?
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(composition_json(&record, &state.urls)),
    )
        .into_response())
}

/// Where the recordings of `room` are written, under the recordings
/// directory `dir`.
fn room_dir(dir: &std::path::Path, room: RoomSid) -> std::path::PathBuf {
    dir.join(room.as_str())
}

/// Queue the composition `params` describe on this node (where the room's
/// recordings are).
pub async fn create_here(state: &AppState, params: &Params) -> Result<CompositionRecord, ApiError> {
    let room_id = params
        .text("RoomSid")
        .ok_or_else(|| ApiError::invalid_parameter("RoomSid", "is required"))?;
    let room = find_room(state, room_id).await?;
    if room.status == RoomStatus::InProgress {
        return Err(ApiError::invalid_parameter(
            "RoomSid",
            "the room is still in progress; compose it once it has ended",
        ));
    }
    let spec = Spec::parse(params)?;
    start(state, &room, spec).await
}

/// The job of composition `sid`: `spec` over `room`'s `recordings`;
/// `interrupted` when it was `processing` in a process that stopped.
fn job(
    sid: CompositionSid,
    room: &RoomRecord,
    spec: Spec,
    recordings: Vec<RecordingRecord>,
    interrupted: bool,
) -> Job {
    Job {
        sid,
        plan: Plan {
            layout: spec.layout,
            audio_sources: spec.audio_sources,
            width: spec.width,
            height: spec.height,
            format: spec.format,
            trim: spec.trim,
            room_start: room.date_created,
        },
        recordings,
        interrupted,
    }
}

/// The room's completed recordings (what a composition is made of).
async fn completed_recordings(
    state: &AppState,
    room: RoomSid,
) -> Result<Vec<RecordingRecord>, ApiError> {
    let filter = RecordingFilter {
        status: Some(RecordingStatus::Completed),
        room_sid: Some(room),
        ..RecordingFilter::default()
    };
    let request = PageRequest {
        size: 1000,
        ..PageRequest::default()
    };
    Ok(state.store.recordings(&filter, &request).await?.items)
}

/// Most unfinished compositions one start resumes.
const RESUMED_AT_MOST: u32 = 1000;

/// Run again what a previous process of this node left `enqueued` or
/// `processing` (its job queue died with it: a crash, or a shutdown that
/// came before the job finished). A composition that was `processing`
/// starts over without a second `composition-started`; one that can no
/// longer be made (its spec or room unreadable) is `failed`. Jobs wait for
/// room in the queue, oldest first.
pub async fn resume_unfinished(state: AppState) {
    let unfinished = match state.store.unfinished_compositions(RESUMED_AT_MOST).await {
        Ok(unfinished) => unfinished,
        Err(e) => {
            tracing::error!(error = %e, "could not read the unfinished compositions");
            return;
        }
    };
    for c in unfinished {
        let resumed = match resumable(&state, &c).await {
            Ok(job) => {
                tracing::info!(composition = %c.sid, status = c.status, "resuming a composition");
                if !state.compositions.enqueue_waiting(job).await {
                    return;
                }
                continue;
            }
            Err(reason) => reason,
        };
        tracing::warn!(composition = %c.sid, reason = resumed, "an unfinished composition cannot be resumed");
        let failed = state
            .store
            .composition_change(
                c.sid,
                &["enqueued", "processing"],
                "failed",
                0,
                None,
                Some(&resumed),
                Some(CallbackEvent::CompositionFailed),
                Timestamp::now(),
            )
            .await;
        if let Err(e) = failed {
            tracing::error!(composition = %c.sid, error = %e, "could not record a composition's end");
        }
    }
}

/// The job of an unfinished composition, or why there is none.
async fn resumable(state: &AppState, c: &CompositionRecord) -> Result<Job, String> {
    let spec = Spec::stored(
        &c.video_layout,
        &c.audio_sources,
        &c.format,
        &c.resolution,
        c.trim,
        c.status_callback.clone(),
        &c.status_callback_method,
    )
    .map_err(|e| format!("its parameters no longer read: {e:?}"))?;
    let room = match state.store.room(c.room_sid).await {
        Ok(Some(room)) => room,
        Ok(None) => return Err("its room is gone".into()),
        Err(e) => return Err(e.to_string()),
    };
    let recordings = completed_recordings(state, c.room_sid)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(job(
        c.sid,
        &room,
        spec,
        recordings,
        c.status == "processing",
    ))
}

/// Write an `enqueued` composition of an ended `room` and queue its job.
pub async fn start(
    state: &AppState,
    room: &RoomRecord,
    spec: Spec,
) -> Result<CompositionRecord, ApiError> {
    let recordings = completed_recordings(state, room.sid).await?;
    if recordings.is_empty() {
        return Err(ApiError::invalid_parameter(
            "RoomSid",
            "the room has no completed recordings",
        ));
    }
    let sid = CompositionSid::random();
    let now = Timestamp::now();
    let record = CompositionRecord {
        sid,
        account_sid: state.account,
        room_sid: room.sid,
        status: "enqueued".into(),
        format: spec.format.clone(),
        resolution: spec.resolution.clone(),
        video_layout: spec.layout_text.clone(),
        audio_sources: serde_json::to_string(&spec.audio_sources).unwrap_or_else(|_| "[]".into()),
        trim: spec.trim,
        status_callback: spec.status_callback.clone(),
        status_callback_method: spec.status_callback_method.clone(),
        progress: 0,
        path: format!("{sid}.{}", spec.format),
        size: 0,
        duration_ms: 0,
        failure: None,
        date_created: now,
        date_updated: now,
        date_completed: None,
    };
    state.store.insert_composition(&record).await?;
    if !state
        .compositions
        .enqueue(job(sid, room, spec, recordings, false))
    {
        state
            .store
            .composition_change(
                sid,
                &["enqueued"],
                "failed",
                0,
                None,
                Some("too many compositions waiting"),
                None,
                Timestamp::now(),
            )
            .await?;
        return Err(ApiError::unavailable(
            "Too many compositions are waiting; try again later",
        ));
    }
    Ok(record)
}

/// `GET /v1/Compositions`
pub async fn list(
    State(state): State<AppState>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let status = params.text("Status").map(str::to_owned);
    if let Some(s) = &status
        && !matches!(
            s.as_str(),
            "enqueued" | "processing" | "completed" | "deleted" | "failed"
        )
    {
        return Err(ApiError::invalid_parameter(
            "Status",
            "not a composition status",
        ));
    }
    let room_sid = match params.text("RoomSid") {
        Some(id) => Some(
            id.parse()
                .map_err(|_| ApiError::invalid_parameter("RoomSid", "not a room SID"))?,
        ),
        None => None,
    };
    let filter = CompositionFilter {
        status,
        room_sid,
        created_after: params.datetime("DateCreatedAfter")?,
        created_before: params.datetime("DateCreatedBefore")?,
    };
    let request = params.page()?;
    let page = state.store.compositions(&filter, &request).await?;
    let mut filters = Vec::new();
    for name in ["Status", "RoomSid", "DateCreatedAfter", "DateCreatedBefore"] {
        if let Some(value) = params.text(name) {
            filters.push((name, value.to_owned()));
        }
    }
    let listing = Listing {
        collection: format!("{}/v1/Compositions", state.urls.base()),
        key: "compositions",
        filters,
        page_size: request.size,
        page_number: request.number,
        page_token: request.after.as_ref(),
    };
    Ok(Json(
        listing.body(&page, |c| composition_json(c, &state.urls)),
    ))
}

async fn find(state: &AppState, id: &str) -> Result<CompositionRecord, ApiError> {
    let not_found = || ApiError::not_found(&format!("/v1/Compositions/{}", excerpt(id)));
    let sid: CompositionSid = id.parse().map_err(|_| not_found())?;
    state
        .store
        .composition(sid)
        .await?
        .filter(|c| c.status != "deleted")
        .ok_or_else(not_found)
}

/// `GET /v1/Compositions/{Sid}`
pub async fn fetch(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<impl IntoResponse, ApiError> {
    let c = find(&state, &id).await?;
    Ok(Json(composition_json(&c, &state.urls)))
}

/// `DELETE /v1/Compositions/{Sid}`: 204; a queued one never runs, a
/// finished one's file is removed. One being composed now is refused.
pub async fn delete(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let c = find(&state, &id).await?;
    let deleted = state
        .store
        .composition_change(
            c.sid,
            &["enqueued", "completed", "failed"],
            "deleted",
            c.progress,
            None,
            None,
            None,
            Timestamp::now(),
        )
        .await?;
    if !deleted {
        return Err(ApiError::bad_request(
            53116,
            "The composition is being composed and cannot be deleted now",
        ));
    }
    let writer = state.store.composition_node(c.sid).await?;
    let command = crate::cluster::Command::RemoveMedia {
        recording: None,
        composition: Some(c.sid),
    };
    let path = state.compositions.dir().join(&c.path);
    crate::cluster::remove_media(&state, writer, &path, command).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/Compositions/{Sid}/Media`
pub async fn media(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let c = find(&state, &id).await?;
    if c.status != "completed" {
        return Err(ApiError::not_found(&format!(
            "/v1/Compositions/{}/Media",
            c.sid
        )));
    }
    // Served by the node whose disk holds it.
    let writer = state.store.composition_node(c.sid).await?;
    let path = state.compositions.dir().join(&c.path);
    let base = match crate::cluster::file_node(&state, writer, &path).await? {
        Some(node) => node.public_url.trim_end_matches('/').to_owned(),
        None => state.urls.base().to_owned(),
    };
    let location = format!(
        "{base}/media/compositions/{}?{}",
        c.sid,
        state.recordings.signed_query(c.sid.as_str())
    );
    Ok((
        StatusCode::FOUND,
        [(header::LOCATION, location.clone())],
        Json(json!({ "redirect_to": location })),
    )
        .into_response())
}

/// `GET /media/compositions/{Sid}?Expires=…&Signature=…`
pub async fn download(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    if !super::recordings::signed(&state, &id, &request) {
        return Err(super::recordings::forbidden());
    }
    let c = find(&state, &id).await?;
    let mime = if c.format == "mp4" {
        "video/mp4"
    } else {
        "video/webm"
    };
    let served = tower_http::services::ServeFile::new_with_mime(
        state.compositions.dir().join(&c.path),
        &mime.parse().map_err(ApiError::internal)?,
    )
    .oneshot(request)
    .await
    .map_err(ApiError::internal)?;
    Ok(served.into_response())
}
