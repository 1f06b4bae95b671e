//! The routes of Twilio's video tutorials, so their client code works
//! against Salon unchanged:
//!
//! | route                        | body                    | answer                              |
//! |------------------------------|-------------------------|-------------------------------------|
//! | `POST /create-token`         | `{identity, roomName}`  | `{token}`                           |
//! | `POST /auth/token`           | `{username, roomSid}`   | `{username, roomSid, token}`        |
//! | `POST /rooms/create`         | `{roomName}`            | the room (camelCase, as twilio-node)|
//! | `GET /rooms`                 |                         | `{activeRooms: [{sid, name}]}`      |
//! | `GET /rooms/{sid}`           |                         | `{room}`                            |
//! | `POST /rooms/complete/{sid}` |                         | `{closedRoom: {sid, name}}`         |
//!
//! They mint tokens for anyone who asks, so the server mounts them only when
//! the operator allows (by default, only when listening on loopback). Bodies
//! may be JSON or form-encoded; CORS is open so a page served elsewhere (a
//! dev server on another port) can call them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{Method, header};
use axum::routing::{get, post};
use salon_room::RoomRequest;
use salon_room::names::{self, NameProblem};
use salon_store::{PageRequest, RoomFilter, RoomStatus};
use salon_token::{Grant, MintOptions};
use serde_json::{Value, json};
use tower_http::cors::{Any, CorsLayer};

use crate::AppState;
use crate::rest::error::ApiError;
use crate::rest::params::{Params, excerpt};
use crate::rest::resources::{RoomJson, camel_case};
use crate::rest::{PathParams, rooms, service_error};

/// Lifetime of tokens the tutorial routes mint: four hours, as the tutorial.
pub const TOKEN_TTL: Duration = Duration::from_secs(14_400);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/create-token", post(create_token))
        .route("/auth/token", post(auth_token))
        .route("/rooms/create", post(create_room))
        .route("/rooms", get(active_rooms))
        .route("/rooms/{sid}", get(room))
        .route("/rooms/complete/{sid}", post(complete_room))
        // Set here, inside the CORS layer, so preflights (OPTIONS) reach it.
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::CONTENT_TYPE]),
        )
}

fn identity<'a>(params: &'a Params, field: &str) -> Result<&'a str, ApiError> {
    let value = params.get(field).unwrap_or("");
    names::check(value).map_err(|problem| match problem {
        NameProblem::Empty => ApiError::bad_request(53200, format!("{field} is required")),
        NameProblem::TooLong => ApiError::bad_request(
            53201,
            format!("{field} is too long: at most 128 characters"),
        ),
        NameProblem::ControlCharacter => ApiError::bad_request(
            53202,
            format!("{field} contains invalid characters: control characters are not allowed"),
        ),
    })?;
    Ok(value)
}

fn room_name<'a>(params: &'a Params, field: &str) -> Result<Option<&'a str>, ApiError> {
    let Some(value) = params.text(field) else {
        return Ok(None);
    };
    names::check(value).map_err(|problem| match problem {
        NameProblem::Empty => ApiError::bad_request(53100, format!("{field} is invalid")),
        NameProblem::TooLong => ApiError::bad_request(
            53101,
            format!("{field} is too long: at most 128 characters"),
        ),
        NameProblem::ControlCharacter => ApiError::bad_request(
            53102,
            format!("{field} contains invalid characters: control characters are not allowed"),
        ),
    })?;
    Ok(Some(value))
}

fn mint(state: &AppState, identity: &str, room: Option<&str>) -> Result<String, ApiError> {
    let key = state
        .credentials
        .signing_key(state.account)
        .ok_or_else(|| {
            ApiError::unavailable("No API key to sign with: create one with `salon keys create`")
        })?;
    let mut grant = Grant::new(identity);
    if let Some(room) = room {
        grant = grant.in_room(room);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let options = MintOptions {
        ttl: TOKEN_TTL,
        ..MintOptions::default()
    };
    let token = salon_token::mint(&key, &grant, now, &options)
        .map_err(|e| ApiError::bad_request(20001, e.to_string()))?;
    state.metrics.token_minted();
    Ok(token)
}

/// `POST /create-token {identity, roomName}` → `{token}`
async fn create_token(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let identity = identity(&params, "identity")?;
    let room = room_name(&params, "roomName")?;
    let token = mint(&state, identity, room)?;
    Ok(Json(json!({ "token": token })))
}

/// `POST /auth/token {username, roomSid}` → `{username, roomSid, token}`
async fn auth_token(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let username = identity(&params, "username")?;
    let room = room_name(&params, "roomSid")?;
    let token = mint(&state, username, room)?;
    Ok(Json(
        json!({ "username": username, "roomSid": room, "token": token }),
    ))
}

fn camel_room(state: &AppState, room: &salon_store::RoomRecord) -> Value {
    camel_case(serde_json::to_value(RoomJson::new(room, &state.urls)).unwrap_or(Value::Null))
}

/// `POST /rooms/create {roomName}` → the new group room.
async fn create_room(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let request = RoomRequest {
        unique_name: room_name(&params, "roomName")?.map(str::to_owned),
        ..RoomRequest::default()
    };
    let sid = state.rooms.create(request).await.map_err(service_error)?;
    let room = state
        .store
        .room(sid)
        .await?
        .ok_or_else(|| ApiError::internal("created room not recorded"))?;
    Ok(Json(camel_room(&state, &room)))
}

/// `GET /rooms` → `{activeRooms: [{sid, name}]}`, newest first.
async fn active_rooms(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let filter = RoomFilter {
        status: Some(RoomStatus::InProgress),
        ..RoomFilter::default()
    };
    let page = state
        .store
        .rooms(
            &filter,
            &PageRequest {
                size: 1000,
                ..PageRequest::default()
            },
        )
        .await?;
    let active: Vec<Value> = page
        .items
        .iter()
        .map(|r| json!({ "sid": r.sid, "name": r.unique_name }))
        .collect();
    if active.is_empty() {
        return Ok(Json(
            json!({ "message": "No active rooms found", "activeRooms": [] }),
        ));
    }
    Ok(Json(json!({ "activeRooms": active })))
}

/// `GET /rooms/{sid}` → `{room}`
async fn room(
    State(state): State<AppState>,
    PathParams(sid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let room = rooms::find_room(&state, &sid).await?;
    Ok(Json(json!({ "room": camel_room(&state, &room) })))
}

/// `POST /rooms/complete/{sid}` → `{closedRoom: {sid, name}}`
async fn complete_room(
    State(state): State<AppState>,
    PathParams(sid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let room = rooms::find_room(&state, &sid).await?;
    let room = rooms::complete(&state, &room, Some("completed")).await?;
    tracing::debug!(room = %room.sid, name = excerpt(&room.unique_name), "room completed via tutorial route");
    Ok(Json(
        json!({ "closedRoom": { "sid": room.sid, "name": room.unique_name } }),
    ))
}
