//! Twilio's Recordings and RecordingRules resources.
//!
//! * `GET /v1/Recordings` (filters `Status`, `SourceSid`, `GroupingSid`,
//!   `MediaType`, `DateCreatedAfter`, `DateCreatedBefore`), `GET` and
//!   `DELETE /v1/Recordings/{Sid}`, and `GET /v1/Recordings/{Sid}/Media`,
//!   which redirects to a short-lived signed link that Salon serves
//!   (`/media/recordings/{Sid}?Expires=…&Signature=…`, no other auth).
//! * `GET /v1/Rooms/{RoomSid}/Recordings` and `…/Recordings/{Sid}`.
//! * `GET` and `POST /v1/Rooms/{RoomSid}/RecordingRules` (`Rules`: a JSON
//!   array of `{"type": "include"|"exclude", "all"|"publisher"|"kind"|"track": …}`).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use salon_sid::{RecordingSid, RoomSid};
use salon_store::{RecordingFilter, RecordingRecord, RecordingStatus, Timestamp};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::PathParams;
use super::error::ApiError;
use super::params::{Params, excerpt};
use super::resources::{Listing, Urls};
use super::rooms::find_room;
use crate::AppState;
use crate::recording::{Rule, default_rules};

fn recording_json(r: &RecordingRecord, urls: &Urls, room_view: bool) -> Value {
    let sid = r.sid.as_str();
    let url = if room_view {
        format!("{}/v1/Rooms/{}/Recordings/{sid}", urls.base(), r.room_sid)
    } else {
        format!("{}/v1/Recordings/{sid}", urls.base())
    };
    let mut body = json!({
        "account_sid": r.account_sid.as_str(),
        "status": r.status.as_str(),
        "date_created": r.date_created.to_string(),
        "sid": sid,
        "source_sid": r.track_sid.as_str(),
        "size": r.size,
        "type": r.kind,
        "duration": (r.status == RecordingStatus::Completed).then_some(r.duration_ms.div_ceil(1000)),
        "container_format": r.container_format,
        "codec": r.codec,
        "grouping_sids": {
            "room_sid": r.room_sid.as_str(),
            "participant_sid": r.participant_sid.as_str(),
        },
        "track_name": r.track_name,
        "offset": r.start_time.map(|t| t.millis()),
        "media_external_location": null,
        "status_callback": null,
        "status_callback_method": "POST",
        "url": url,
        "links": { "media": format!("{}/v1/Recordings/{sid}/Media", urls.base()) },
    });
    if room_view {
        body["room_sid"] = json!(r.room_sid.as_str());
    }
    body
}

fn recording_status(text: &str) -> Result<RecordingStatus, ApiError> {
    RecordingStatus::parse(text).ok_or_else(|| {
        ApiError::invalid_parameter(
            "Status",
            format!(
                "'{}' is not processing, completed, deleted or failed",
                excerpt(text)
            ),
        )
    })
}

async fn list_recordings(
    state: &AppState,
    params: &Params,
    room: Option<RoomSid>,
) -> Result<Value, ApiError> {
    let status = params.text("Status").map(recording_status).transpose()?;
    let source_sid = params
        .text("SourceSid")
        .map(|s| {
            s.parse()
                .map_err(|_| ApiError::invalid_parameter("SourceSid", "not a track SID"))
        })
        .transpose()?;
    let media_type = params.text("MediaType").map(str::to_owned);
    if let Some(kind) = &media_type
        && !matches!(kind.as_str(), "audio" | "video" | "data")
    {
        return Err(ApiError::invalid_parameter(
            "MediaType",
            "not audio, video or data",
        ));
    }
    let filter = RecordingFilter {
        status,
        source_sid,
        grouping_sid: params.all("GroupingSid").first().map(|s| (*s).to_owned()),
        room_sid: room,
        media_type,
        created_after: params.datetime("DateCreatedAfter")?,
        created_before: params.datetime("DateCreatedBefore")?,
    };
    let request = params.page()?;
    let page = state.store.recordings(&filter, &request).await?;
    let mut filters = Vec::new();
    for name in [
        "Status",
        "SourceSid",
        "GroupingSid",
        "MediaType",
        "DateCreatedAfter",
        "DateCreatedBefore",
    ] {
        if let Some(value) = params.text(name) {
            filters.push((name, value.to_owned()));
        }
    }
    let collection = match room {
        Some(room) => format!("{}/v1/Rooms/{room}/Recordings", state.urls.base()),
        None => format!("{}/v1/Recordings", state.urls.base()),
    };
    let listing = Listing {
        collection,
        key: "recordings",
        filters,
        page_size: request.size,
        page_number: request.number,
        page_token: request.after.as_ref(),
    };
    Ok(listing.body(&page, |r| recording_json(r, &state.urls, room.is_some())))
}

/// `GET /v1/Recordings`
pub async fn list(
    State(state): State<AppState>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(list_recordings(&state, &params, None).await?))
}

/// `GET /v1/Rooms/{RoomSid}/Recordings`
pub async fn list_in_room(
    State(state): State<AppState>,
    PathParams(room): PathParams<String>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let room = find_room(&state, &room).await?;
    Ok(Json(
        list_recordings(&state, &params, Some(room.sid)).await?,
    ))
}

async fn find(state: &AppState, id: &str) -> Result<RecordingRecord, ApiError> {
    let not_found = || ApiError::not_found(&format!("/v1/Recordings/{}", excerpt(id)));
    let sid: RecordingSid = id.parse().map_err(|_| not_found())?;
    state
        .store
        .recording(sid)
        .await?
        .filter(|r| r.status != RecordingStatus::Deleted)
        .ok_or_else(not_found)
}

/// `GET /v1/Recordings/{Sid}`
pub async fn fetch(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<impl IntoResponse, ApiError> {
    let r = find(&state, &id).await?;
    Ok(Json(recording_json(&r, &state.urls, false)))
}

/// `GET /v1/Rooms/{RoomSid}/Recordings/{Sid}`
pub async fn fetch_in_room(
    State(state): State<AppState>,
    PathParams((room, id)): PathParams<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let room = find_room(&state, &room).await?;
    let r = find(&state, &id).await?;
    if r.room_sid != room.sid {
        return Err(ApiError::not_found(&format!(
            "/v1/Rooms/{}/Recordings/{}",
            room.sid,
            excerpt(&id)
        )));
    }
    Ok(Json(recording_json(&r, &state.urls, true)))
}

/// `DELETE /v1/Recordings/{Sid}`: 204; the file is removed. A recording
/// still being written cannot be deleted (53116 is Twilio's "in progress").
pub async fn delete(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let r = find(&state, &id).await?;
    if !state
        .store
        .delete_recording(r.sid, Timestamp::now())
        .await?
    {
        return Err(ApiError::bad_request(
            53116,
            "The recording is still in progress and cannot be deleted",
        ));
    }
    let writer = state.store.room_node(r.room_sid).await?;
    let command = crate::cluster::Command::RemoveMedia {
        recording: Some(r.sid),
        composition: None,
    };
    let path = state.recordings.dir().join(&r.path);
    crate::cluster::remove_media(&state, writer, &path, command).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/Recordings/{Sid}/Media`: a redirect to a signed link, valid a
/// few minutes, as Twilio does.
pub async fn media(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let r = find(&state, &id).await?;
    if r.status != RecordingStatus::Completed {
        return Err(ApiError::not_found(&format!(
            "/v1/Recordings/{}/Media",
            r.sid
        )));
    }
    // Served by the node whose disk holds it: the one that ran the room.
    let writer = state.store.room_node(r.room_sid).await?;
    let path = state.recordings.dir().join(&r.path);
    let base = match crate::cluster::file_node(&state, writer, &path).await? {
        Some(node) => node.public_url.trim_end_matches('/').to_owned(),
        None => state.urls.base().to_owned(),
    };
    let location = format!(
        "{base}/media/recordings/{}?{}",
        r.sid,
        state.recordings.signed_query(r.sid.as_str())
    );
    let body = json!({ "redirect_to": location });
    Ok((
        StatusCode::FOUND,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

/// `GET /media/recordings/{Sid}?Expires=…&Signature=…`: the file, to
/// whoever holds a valid link (no other authentication, like Twilio's
/// pre-signed media URLs).
pub async fn download(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    if !signed(&state, &id, &request) {
        return Err(forbidden());
    }
    let r = find(&state, &id).await?;
    let path = state.recordings.dir().join(&r.path);
    let mime = if r.container_format == "mka" {
        "audio/x-matroska"
    } else {
        "video/x-matroska"
    };
    let served = tower_http::services::ServeFile::new_with_mime(
        path,
        &mime.parse().map_err(ApiError::internal)?,
    )
    .oneshot(request)
    .await
    .map_err(ApiError::internal)?;
    Ok(served.into_response())
}

/// Whether `request` carries a valid, unexpired link signature for `sid`.
pub(super) fn signed(state: &AppState, sid: &str, request: &Request) -> bool {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match (
        get("Expires").and_then(|e| e.parse::<u64>().ok()),
        get("Signature"),
    ) {
        (Some(expires), Some(signature)) => state.recordings.verify(sid, expires, signature),
        _ => false,
    }
}

/// 403 for a bad or expired link.
pub(super) fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        20403,
        "The link is invalid or has expired; ask the resource's /Media for a new one",
    )
}

fn rules_json(room: RoomSid, rules: &[Rule], created: Timestamp, updated: Timestamp) -> Value {
    json!({
        "room_sid": room.as_str(),
        "rules": rules,
        "date_created": created.to_string(),
        "date_updated": updated.to_string(),
    })
}

/// Read Twilio's rules: a JSON list, or an object `{"rules": [...]}` (the
/// shape of the room's `RecordingRules` parameter). 53120 when invalid.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, ApiError> {
    let invalid =
        |detail: String| ApiError::bad_request(53120, format!("Invalid recording rules: {detail}"));
    let value: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let list = match value {
        Value::Object(mut o) => o.remove("rules").unwrap_or(Value::Null),
        other => other,
    };
    let rules: Vec<Rule> =
        serde_json::from_value(list).map_err(|e| invalid(excerpt(&e.to_string())))?;
    if let Some(bad) = rules.iter().find(|r| !r.is_valid()) {
        return Err(invalid(format!(
            "{} names no filter, or an unknown kind",
            serde_json::to_string(bad).unwrap_or_default()
        )));
    }
    Ok(rules)
}

/// Store `room`'s rules and apply them now.
pub async fn set_rules(
    state: &AppState,
    room: RoomSid,
    rules: Vec<Rule>,
) -> Result<Timestamp, ApiError> {
    let now = Timestamp::now();
    let stored = serde_json::to_string(&rules).map_err(ApiError::internal)?;
    state.store.set_recording_rules(room, &stored, now).await?;
    match crate::cluster::remote_holder(state, room).await? {
        Some(node) => {
            let command = crate::cluster::Command::ApplyRecordingRules {
                room,
                rules: stored,
            };
            crate::cluster::run_on(state, &node, command).await?;
        }
        None => state.recordings.set_rules(room, rules).await,
    }
    Ok(now)
}

/// `GET /v1/Rooms/{RoomSid}/RecordingRules`
pub async fn rules(
    State(state): State<AppState>,
    PathParams(room): PathParams<String>,
) -> Result<impl IntoResponse, ApiError> {
    let room = find_room(&state, &room).await?;
    let (rules, updated) = match state.store.recording_rules(room.sid).await? {
        Some((json, at)) => (serde_json::from_str(&json).unwrap_or_default(), at),
        None => (
            default_rules(room.record_participants_on_connect),
            room.date_created,
        ),
    };
    Ok(Json(rules_json(
        room.sid,
        &rules,
        room.date_created,
        updated,
    )))
}

/// `POST /v1/Rooms/{RoomSid}/RecordingRules` with `Rules`: replace the
/// room's rules; recordings start and stop at once.
pub async fn update_rules(
    State(state): State<AppState>,
    PathParams(room): PathParams<String>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let room = find_room(&state, &room).await?;
    let rules = parse_rules(params.text("Rules").unwrap_or("[]"))?;
    let now = set_rules(&state, room.sid, rules.clone()).await?;
    Ok(Json(rules_json(room.sid, &rules, room.date_created, now)))
}
