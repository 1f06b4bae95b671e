//! `/v1/Rooms/{RoomSid}/Participants` and each participant's
//! `PublishedTracks` and `SubscribedTracks`.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use salon_room::DisconnectReason;
use salon_sid::{ParticipantSid, TrackSid};
use salon_store::{ParticipantFilter, ParticipantRecord, ParticipantStatus, RoomRecord};

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
    let room = find_room(&state, &room).await?;
    let participant = find_participant(&state, &room, &participant).await?;
    Ok(Json(ParticipantJson::new(&participant, &state.urls)).into_response())
}

/// `POST /v1/Rooms/{RoomSid}/Participants/{Sid}` with `Status=disconnected`:
/// remove the participant from the room.
pub async fn update(
    State(state): State<AppState>,
    PathParams((room, participant)): PathParams<(String, String)>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let room = find_room(&state, &room).await?;
    let participant = find_participant(&state, &room, &participant).await?;
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
    if participant.status == ParticipantStatus::Connected {
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

/// `GET …/Participants/{Sid}/PublishedTracks`
pub async fn published_tracks(
    State(state): State<AppState>,
    PathParams((room, participant)): PathParams<(String, String)>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let room = find_room(&state, &room).await?;
    let participant = find_participant(&state, &room, &participant).await?;
    let request = params.page()?;
    let page = state
        .store
        .published_tracks(participant.sid, &request)
        .await?;
    let listing = Listing {
        collection: format!(
            "{}/PublishedTracks",
            state
                .urls
                .participant(room.sid.as_str(), participant.sid.as_str())
        ),
        key: "published_tracks",
        filters: Vec::new(),
        page_size: request.size,
        page_number: request.number,
        page_token: request.after.as_ref(),
    };
    Ok(Json(listing.body(&page, |t| {
        to_json(PublishedTrackJson::new(t, &state.urls))
    })))
}

/// `GET …/Participants/{Sid}/PublishedTracks/{TrackSid}`
pub async fn published_track(
    State(state): State<AppState>,
    PathParams((room, participant, track)): PathParams<(String, String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let room = find_room(&state, &room).await?;
    let participant = find_participant(&state, &room, &participant).await?;
    let not_found = || {
        ApiError::not_found(&format!(
            "/v1/Rooms/{}/Participants/{}/PublishedTracks/{}",
            room.sid,
            participant.sid,
            excerpt(&track)
        ))
    };
    let sid = track.parse::<TrackSid>().map_err(|_| not_found())?;
    let record = state
        .store
        .published_track(participant.sid, sid)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(PublishedTrackJson::new(&record, &state.urls)).into_response())
}

/// `GET …/Participants/{Sid}/SubscribedTracks`
pub async fn subscribed_tracks(
    State(state): State<AppState>,
    PathParams((room, participant)): PathParams<(String, String)>,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let room = find_room(&state, &room).await?;
    let participant = find_participant(&state, &room, &participant).await?;
    let request = params.page()?;
    let page = state
        .store
        .subscribed_tracks(participant.sid, &request)
        .await?;
    let listing = Listing {
        collection: format!(
            "{}/SubscribedTracks",
            state
                .urls
                .participant(room.sid.as_str(), participant.sid.as_str())
        ),
        key: "subscribed_tracks",
        filters: Vec::new(),
        page_size: request.size,
        page_number: request.number,
        page_token: request.after.as_ref(),
    };
    Ok(Json(listing.body(&page, |t| {
        to_json(SubscribedTrackJson::new(t, &state.urls))
    })))
}

/// `GET …/Participants/{Sid}/SubscribedTracks/{TrackSid}`
pub async fn subscribed_track(
    State(state): State<AppState>,
    PathParams((room, participant, track)): PathParams<(String, String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let room = find_room(&state, &room).await?;
    let participant = find_participant(&state, &room, &participant).await?;
    let not_found = || {
        ApiError::not_found(&format!(
            "/v1/Rooms/{}/Participants/{}/SubscribedTracks/{}",
            room.sid,
            participant.sid,
            excerpt(&track)
        ))
    };
    let sid = track.parse::<TrackSid>().map_err(|_| not_found())?;
    let record = state
        .store
        .subscribed_track(participant.sid, sid)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(SubscribedTrackJson::new(&record, &state.urls)).into_response())
}
