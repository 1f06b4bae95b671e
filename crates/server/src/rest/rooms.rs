//! `/v1/Rooms`: create, list, fetch, complete.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use salon_room::{CallbackMethod, RoomRequest, RoomType, StatusCallback, VideoCodec};
use salon_sid::RoomSid;
use salon_store::{RoomFilter, RoomRecord, RoomStatus};

use super::error::ApiError;
use super::params::{Params, excerpt};
use super::resources::{Listing, RoomJson, to_json};
use super::{PathParams, service_error};
use crate::AppState;

/// The parameters of `POST /v1/Rooms` Salon acts on.
const CREATE: &[&str] = &[
    "UniqueName",
    "Type",
    "MaxParticipants",
    "EmptyRoomTimeout",
    "UnusedRoomTimeout",
    "MaxParticipantDuration",
    "StatusCallback",
    "StatusCallbackMethod",
    "VideoCodecs",
    "AudioOnly",
    "RecordParticipantsOnConnect",
    "MediaRegion",
];

/// Twilio's other parameters of `POST /v1/Rooms`: taken and checked, with
/// no effect (`EnableTurn` is deprecated and always on; the rest concern
/// recording and transcription, which Salon does not do), except that
/// asking for a large room or for transcription is refused.
const CREATE_ACCEPTED: &[&str] = &[
    "EnableTurn",
    "RecordingRules",
    "LargeRoom",
    "TranscribeParticipantsOnConnect",
    "TranscriptionsConfiguration",
];

/// Turn `POST /v1/Rooms` parameters into a room request, refusing bad
/// values with Twilio's codes and names that are no parameter of Twilio's.
/// Ranges are checked by the room core.
pub fn room_request(params: &Params) -> Result<RoomRequest, ApiError> {
    let known: Vec<&str> = CREATE.iter().chain(CREATE_ACCEPTED).copied().collect();
    params.only(&known)?;
    params.boolean("EnableTurn")?;
    if let Some(text) = params.text("RecordingRules") {
        super::recordings::parse_rules(text).map_err(|_| {
            ApiError::invalid_parameter(
                "RecordingRules",
                r#"not valid recording rules: {"rules": [{"type": "include", "all": true}, …]}"#,
            )
        })?;
    }
    for name in ["TranscriptionsConfiguration"] {
        if let Some(text) = params.text(name)
            && !serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.is_object())
        {
            return Err(ApiError::invalid_parameter(name, "not a JSON object"));
        }
    }
    for (name, feature) in [
        ("LargeRoom", "large rooms"),
        ("TranscribeParticipantsOnConnect", "transcription"),
    ] {
        if params.boolean(name)? == Some(true) {
            return Err(ApiError::invalid_parameter(
                name,
                format!("Salon does not support {feature}"),
            ));
        }
    }
    let room_type = params
        .text("Type")
        .map(|t| t.parse::<RoomType>())
        .transpose()
        .map_err(ApiError::from)?;
    let max_participants = params
        .number("MaxParticipants", 53107)?
        .map(|n| {
            u32::try_from(n)
                .map_err(|_| ApiError::bad_request(53107, "MaxParticipants is out of range"))
        })
        .transpose()?;
    let minutes = |name| -> Result<Option<Duration>, ApiError> {
        Ok(params
            .number(name, 53109)?
            .map(|m| Duration::from_secs(m.saturating_mul(60))))
    };
    let status_callback = match params.text("StatusCallback") {
        None => None,
        Some(url) => Some(StatusCallback {
            url: callback_url(url)?,
            method: callback_method(params)?,
        }),
    };
    if status_callback.is_none() {
        callback_method(params)?; // still validate it
    }
    let video_codecs = {
        let codecs = params.all("VideoCodecs");
        if codecs.is_empty() {
            None
        } else {
            // Twilio takes repeated parameters; some clients send one
            // comma-separated value.
            let mut parsed = Vec::new();
            for codec in codecs
                .iter()
                .flat_map(|c| c.split(','))
                .map(str::trim)
                .filter(|c| !c.is_empty())
            {
                parsed.push(codec.parse::<VideoCodec>().map_err(ApiError::from)?);
            }
            Some(parsed)
        }
    };
    let media_region = match params.text("MediaRegion") {
        None => None,
        Some(region)
            if region.len() <= 32
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            Some(region.to_owned())
        }
        Some(region) => {
            return Err(ApiError::bad_request(
                53115,
                format!("MediaRegion is invalid: '{}'", excerpt(region)),
            ));
        }
    };
    Ok(RoomRequest {
        unique_name: params.get("UniqueName").map(str::to_owned),
        room_type,
        max_participants,
        max_participant_duration: params
            .number("MaxParticipantDuration", 53109)?
            .map(Duration::from_secs),
        empty_room_timeout: minutes("EmptyRoomTimeout")?,
        unused_room_timeout: minutes("UnusedRoomTimeout")?,
        status_callback,
        video_codecs,
        audio_only: params.boolean("AudioOnly")?,
        record_participants_on_connect: params.boolean("RecordParticipantsOnConnect")?,
        media_region,
    })
}

fn callback_url(text: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            53111,
            format!(
                "StatusCallback is invalid: '{}' is not an absolute http(s) URL",
                excerpt(text)
            ),
        )
    };
    if text.len() > 2048 {
        return Err(invalid());
    }
    let url = url::Url::parse(text).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid());
    }
    Ok(url.into())
}

fn callback_method(params: &Params) -> Result<CallbackMethod, ApiError> {
    match params.text("StatusCallbackMethod") {
        None => Ok(CallbackMethod::Post),
        Some(m) if m.eq_ignore_ascii_case("POST") => Ok(CallbackMethod::Post),
        Some(m) if m.eq_ignore_ascii_case("GET") => Ok(CallbackMethod::Get),
        Some(m) => Err(ApiError::bad_request(
            53110,
            format!(
                "StatusCallbackMethod is invalid: '{}' is not GET or POST",
                excerpt(m)
            ),
        )),
    }
}

/// A room by SID (any status) or by unique name (in progress only).
pub async fn find_room(state: &AppState, id: &str) -> Result<RoomRecord, ApiError> {
    let found = match id.parse::<RoomSid>() {
        Ok(sid) => state.store.room(sid).await?,
        Err(_) => state.store.room_in_progress_by_name(id).await?,
    };
    found.ok_or_else(|| ApiError::not_found(&format!("/v1/Rooms/{}", excerpt(id))))
}

fn room_status(text: &str) -> Result<RoomStatus, ApiError> {
    text.parse().map_err(|()| {
        ApiError::bad_request(
            53112,
            format!(
                "Status is invalid: '{}' is not in-progress, completed or failed",
                excerpt(text)
            ),
        )
    })
}

/// `POST /v1/Rooms`
pub async fn create(
    State(state): State<AppState>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    room_request(&params)?;
    let sid = match crate::cluster::placement(&state).await? {
        None => create_here(&state, &params).await?,
        Some(node) => {
            let command = crate::cluster::Command::CreateRoom {
                params: params.pairs(),
            };
            crate::cluster::run_on(&state, &node, command)
                .await?
                .room
                .ok_or_else(|| ApiError::internal("a node created a room without a SID"))?
        }
    };
    let room = state
        .store
        .room(sid)
        .await?
        .ok_or_else(|| ApiError::internal("created room not recorded"))?;
    Ok((StatusCode::CREATED, Json(RoomJson::new(&room, &state.urls))).into_response())
}

/// Create the room `params` describe on this node (placed here, by this
/// node or another).
pub async fn create_here(state: &AppState, params: &Params) -> Result<RoomSid, ApiError> {
    let request = room_request(params)?;
    let sid = state.rooms.create(request).await.map_err(service_error)?;
    if let Some(text) = params.text("RecordingRules") {
        let rules = super::recordings::parse_rules(text)?;
        super::recordings::set_rules(state, sid, rules).await?;
    }
    Ok(sid)
}

/// `GET /v1/Rooms`
pub async fn list(
    State(state): State<AppState>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let status = room_status(params.text("Status").unwrap_or("in-progress"))?;
    let filter = RoomFilter {
        status: Some(status),
        unique_name: params.text("UniqueName").map(str::to_owned),
        created_after: params.datetime("DateCreatedAfter")?,
        created_before: params.datetime("DateCreatedBefore")?,
    };
    let request = params.page()?;
    let page = state.store.rooms(&filter, &request).await?;
    let mut filters = vec![("Status", status.as_str().to_owned())];
    if let Some(name) = &filter.unique_name {
        filters.push(("UniqueName", name.clone()));
    }
    for name in ["DateCreatedAfter", "DateCreatedBefore"] {
        if let Some(value) = params.text(name) {
            filters.push((name, value.to_owned()));
        }
    }
    let listing = Listing {
        collection: state.urls.rooms(),
        key: "rooms",
        filters,
        page_size: request.size,
        page_number: request.number,
        page_token: request.after.as_ref(),
    };
    Ok(Json(listing.body(&page, |room| {
        to_json(RoomJson::new(room, &state.urls))
    })))
}

/// `GET /v1/Rooms/{Sid or UniqueName}`
pub async fn fetch(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<impl IntoResponse, ApiError> {
    let room = find_room(&state, &id).await?;
    Ok(Json(RoomJson::new(&room, &state.urls)).into_response())
}

/// `POST /v1/Rooms/{Sid}` with `Status=completed`: end the room now.
pub async fn update(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    params.only(&["Status"])?;
    let room = find_room(&state, &id).await?;
    let completed = complete(&state, &room, params.get("Status")).await?;
    Ok(Json(RoomJson::new(&completed, &state.urls)).into_response())
}

/// Complete `room` if `status` says so; shared with the tutorial routes.
pub async fn complete(
    state: &AppState,
    room: &RoomRecord,
    status: Option<&str>,
) -> Result<RoomRecord, ApiError> {
    match status {
        Some("completed") => {}
        Some(other) => {
            return Err(ApiError::bad_request(
                53112,
                format!(
                    "Status is invalid: a room can only be updated to completed, not '{}'",
                    excerpt(other)
                ),
            ));
        }
        None => {
            return Err(ApiError::bad_request(
                53112,
                "Status is invalid: Status=completed is required",
            ));
        }
    }
    if room.status == RoomStatus::InProgress
        && let Some(node) = crate::cluster::remote_holder(state, room.sid).await?
    {
        let command = crate::cluster::Command::CompleteRoom { room: room.sid };
        crate::cluster::run_on(state, &node, command).await?;
    } else if room.status == RoomStatus::InProgress {
        match state.rooms.complete(room.sid).await {
            // It may have ended on its own since we looked: that is fine.
            Ok(())
            | Err(crate::service::ServiceError::Room(salon_room::RoomError::RoomNotFound(_))) => {}
            Err(e) => return Err(service_error(e)),
        }
    }
    state
        .store
        .room(room.sid)
        .await?
        .ok_or_else(|| ApiError::internal("completed room not recorded"))
}
