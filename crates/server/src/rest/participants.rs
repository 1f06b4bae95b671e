//! `/v1/Rooms/{RoomSid}/Participants` and each participant's
//! `PublishedTracks` and `SubscribedTracks`.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use salon_room::DisconnectReason;
use salon_sid::{ParticipantSid, TrackSid};
use salon_store::{
    PageRequest, ParticipantFilter, ParticipantRecord, ParticipantStatus, RoomRecord,
};

use super::error::ApiError;
use super::params::{Params, excerpt};
use super::resources::{
    Listing, ParticipantJson, PublishedTrackJson, SubscribedTrackJson, to_json,
};
use super::rooms::find_room;
use super::{PathParams, service_error};
use crate::AppState;
use crate::service::ServiceError;

/// A participant of `room` by SID (any status) or identity (connected only).
async fn find_participant(
    state: &AppState,
    room: &RoomRecord,
    id: &str,
) -> Result<ParticipantRecord, ApiError> {
    let found = match id.parse::<ParticipantSid>() {
        Ok(sid) => state.store.participant(room.sid, sid).await?,
        Err(_) => {
            state
                .store
                .connected_participant_by_identity(room.sid, id)
                .await?
        }
    };
    found.ok_or_else(|| {
        ApiError::not_found(&format!(
            "/v1/Rooms/{}/Participants/{}",
            room.sid,
            excerpt(id)
        ))
    })
}

fn participant_status(text: &str) -> Result<ParticipantStatus, ApiError> {
    text.parse().map_err(|()| {
        ApiError::invalid_parameter(
            "Status",
            format!("'{}' is not connected or disconnected", excerpt(text)),
        )
    })
}

/// `GET /v1/Rooms/{RoomSid}/Participants`
pub async fn list(
    State(state): State<AppState>,
    PathParams(room): PathParams<String>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let room = find_room(&state, &room).await?;
    let filter = ParticipantFilter {
        status: params.text("Status").map(participant_status).transpose()?,
        identity: params.text("Identity").map(str::to_owned),
        created_after: params.datetime("DateCreatedAfter")?,
        created_before: params.datetime("DateCreatedBefore")?,
    };
    let request = params.page()?;
    let page = state
        .store
        .participants(room.sid, &filter, &request)
        .await?;
    let filters = [
        "Status",
        "Identity",
        "DateCreatedAfter",
        "DateCreatedBefore",
    ]
    .into_iter()
    .filter_map(|name| params.text(name).map(|v| (name, v.to_owned())))
    .collect();
    let listing = Listing {
        collection: state.urls.participants(room.sid.as_str()),
        key: "participants",
        filters,
        page_size: request.size,
        page_number: request.number,
        page_token: request.after.as_ref(),
    };
    Ok(Json(listing.body(&page, |p| {
        to_json(ParticipantJson::new(p, &state.urls))
    })))
}

/// `GET /v1/Rooms/{RoomSid}/Participants/{Sid or Identity}`
pub async fn fetch(
    State(state): State<AppState>,
    PathParams((room, participant)): PathParams<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let (_, participant) = find_member(&state, &room, &participant).await?;
    Ok(Json(ParticipantJson::new(&participant, &state.urls)).into_response())
}

/// `POST /v1/Rooms/{RoomSid}/Participants/{Sid}` with `Status=disconnected`:
/// remove the participant from the room.
pub async fn update(
    State(state): State<AppState>,
    PathParams((room, participant)): PathParams<(String, String)>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    params.only(&["Status"])?;
    let (room, participant) = find_member(&state, &room, &participant).await?;
    match params.get("Status") {
        Some("disconnected") => {}
        Some(other) => {
            return Err(ApiError::invalid_parameter(
                "Status",
                format!(
                    "a participant can only be updated to disconnected, not '{}'",
                    excerpt(other)
                ),
            ));
        }
        None => {
            return Err(ApiError::invalid_parameter(
                "Status",
                "Status=disconnected is required",
            ));
        }
    }
    if participant.status == ParticipantStatus::Connected
        && let Some(node) = crate::cluster::remote_holder(&state, room.sid).await?
    {
        let command = crate::cluster::Command::DisconnectParticipant {
            participant: participant.sid,
        };
        crate::cluster::run_on(&state, &node, command).await?;
    } else if participant.status == ParticipantStatus::Connected {
        match state
            .rooms
            .disconnect(participant.sid, DisconnectReason::Kicked)
            .await
        {
            // Already gone by the time the command ran: the outcome is the same.
            Ok(()) | Err(ServiceError::Room(salon_room::RoomError::ParticipantNotFound(_))) => {}
            Err(e) => return Err(service_error(e)),
        }
    }
    let updated = state
        .store
        .participant(room.sid, participant.sid)
        .await?
        .ok_or_else(|| ApiError::internal("disconnected participant not recorded"))?;
    Ok(Json(ParticipantJson::new(&updated, &state.urls)).into_response())
}

/// The room and participant a track path names.
async fn find_member(
    state: &AppState,
    room: &str,
    participant: &str,
) -> Result<(RoomRecord, ParticipantRecord), ApiError> {
    let room = find_room(state, room).await?;
    let participant = find_participant(state, &room, participant).await?;
    Ok((room, participant))
}

/// The listing of one of a participant's track collections
/// (`PublishedTracks` or `SubscribedTracks`).
fn track_listing<'a>(
    state: &AppState,
    participant: &ParticipantRecord,
    collection: &str,
    key: &'static str,
    request: &'a PageRequest,
) -> Listing<'a> {
    let base = state
        .urls
        .participant(participant.room_sid.as_str(), participant.sid.as_str());
    Listing {
        collection: format!("{base}/{collection}"),
        key,
        filters: Vec::new(),
        page_size: request.size,
        page_number: request.number,
        page_token: request.after.as_ref(),
    }
}

/// A track SID from a path, or 404 naming the path.
fn track_sid(
    participant: &ParticipantRecord,
    collection: &str,
    track: &str,
) -> Result<TrackSid, ApiError> {
    track
        .parse()
        .map_err(|_| track_not_found(participant, collection, track))
}

fn track_not_found(participant: &ParticipantRecord, collection: &str, track: &str) -> ApiError {
    ApiError::not_found(&format!(
        "/v1/Rooms/{}/Participants/{}/{collection}/{}",
        participant.room_sid,
        participant.sid,
        excerpt(track)
    ))
}

/// `GET …/Participants/{Sid}/PublishedTracks`
pub async fn published_tracks(
    State(state): State<AppState>,
    PathParams((room, participant)): PathParams<(String, String)>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let (_, participant) = find_member(&state, &room, &participant).await?;
    let request = params.page()?;
    let page = state
        .store
        .published_tracks(participant.sid, &request)
        .await?;
    let listing = track_listing(
        &state,
        &participant,
        "PublishedTracks",
        "published_tracks",
        &request,
    );
    Ok(Json(listing.body(&page, |t| {
        to_json(PublishedTrackJson::new(t, &state.urls))
    })))
}

/// `GET …/Participants/{Sid}/PublishedTracks/{TrackSid}`
pub async fn published_track(
    State(state): State<AppState>,
    PathParams((room, participant, track)): PathParams<(String, String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let (_, participant) = find_member(&state, &room, &participant).await?;
    let sid = track_sid(&participant, "PublishedTracks", &track)?;
    let record = state.store.published_track(participant.sid, sid).await?;
    let record = record.ok_or_else(|| track_not_found(&participant, "PublishedTracks", &track))?;
    Ok(Json(PublishedTrackJson::new(&record, &state.urls)).into_response())
}

/// `GET …/Participants/{Sid}/SubscribedTracks`
pub async fn subscribed_tracks(
    State(state): State<AppState>,
    PathParams((room, participant)): PathParams<(String, String)>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let (_, participant) = find_member(&state, &room, &participant).await?;
    let request = params.page()?;
    let page = state
        .store
        .subscribed_tracks(participant.sid, &request)
        .await?;
    let listing = track_listing(
        &state,
        &participant,
        "SubscribedTracks",
        "subscribed_tracks",
        &request,
    );
    Ok(Json(listing.body(&page, |t| {
        to_json(SubscribedTrackJson::new(t, &state.urls))
    })))
}

/// `GET …/Participants/{Sid}/SubscribedTracks/{TrackSid}`
pub async fn subscribed_track(
    State(state): State<AppState>,
    PathParams((room, participant, track)): PathParams<(String, String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let (_, participant) = find_member(&state, &room, &participant).await?;
    let sid = track_sid(&participant, "SubscribedTracks", &track)?;
    let record = state.store.subscribed_track(participant.sid, sid).await?;
    let record = record.ok_or_else(|| track_not_found(&participant, "SubscribedTracks", &track))?;
    Ok(Json(SubscribedTrackJson::new(&record, &state.urls)).into_response())
}
