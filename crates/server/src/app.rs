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
//! may be JSON or form-encoded.
//!
//! A browser lets any page it shows send requests to any address, the
//! developer's own `localhost` included, so these routes also check who is
//! asking ([`Origins`]): a request carrying an `Origin` header (browsers add
//! one to every cross-origin request and to same-origin POSTs) is served only
//! when it comes from the demo app's own origin — the public URL, or the
//! address the page was loaded from when that is `localhost` or an IP
//! address — or from an origin the operator listed (`--cors-origin`, which
//! CORS then allows too). Anything else is refused with 403 (20403), so a web
//! page the developer happens to visit can neither mint tokens on their Salon
//! nor complete its rooms. Requests without `Origin` (curl, a token server)
//! are not browsers' and are served.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use salon_room::RoomRequest;
use salon_room::names::{self, NameProblem};
use salon_store::{PageRequest, RoomFilter, RoomStatus};
use salon_token::{Grant, MintOptions};
use serde_json::{Value, json};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::AppState;
use crate::rest::error::ApiError;
use crate::rest::params::{Params, excerpt};
use crate::rest::resources::{RoomJson, camel_case};
use crate::rest::{PathParams, rooms, service_error};

/// Lifetime of tokens the tutorial routes mint: four hours, as the tutorial.
pub const TOKEN_TTL: Duration = Duration::from_secs(14_400);

/// Which web pages may call the tutorial routes from a browser.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// Origins allowed from anywhere (`scheme://host[:port]`, lowercase).
    listed: Vec<String>,
    /// `*` was listed: every origin is allowed (the tutorials' own setup).
    any: bool,
    /// The public URL's host, lowercase, without port.
    public_host: String,
}

impl Origins {
    /// The public URL's origin and `extra` (origins, or `*` for any).
    pub fn new(public_url: &str, extra: &[String]) -> Self {
        let public = url::Url::parse(public_url).ok();
        let public_host = public
            .as_ref()
            .and_then(|u| u.host_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mut listed: Vec<String> = public
            .map(|u| u.origin().ascii_serialization())
            .into_iter()
            .collect();
        let mut any = false;
        for origin in extra {
            match origin.trim() {
                "*" => any = true,
                origin => listed.push(origin.trim_end_matches('/').to_ascii_lowercase()),
            }
        }
        Self {
            listed,
            any,
            public_host,
        }
    }

    /// Whether a request from a page of `origin`, sent to `host` (its Host
    /// header), may be served.
    pub fn allow(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.to_ascii_lowercase();
        if self.any || self.listed.contains(&origin) {
            return true;
        }
        // The page's own origin: the address the browser loaded it from.
        // Not for any host name, though: a page whose name an attacker
        // points at this machine (DNS rebinding) would pass for one.
        let authority = origin.split_once("://").map_or("", |(_, a)| a);
        let Some(host) = host.map(str::to_ascii_lowercase) else {
            return false;
        };
        authority == host && {
            let name = url::Url::parse(&origin)
                .ok()
                .and_then(|u| u.host().map(|h| h.to_owned()));
            match name {
                Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => true,
                Some(url::Host::Domain(name)) => {
                    name == "localhost" || name.ends_with(".localhost") || name == self.public_host
                }
                None => false,
            }
        }
    }

    fn allow_request(&self, origin: &HeaderValue, headers: &HeaderMap) -> bool {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        origin.to_str().is_ok_and(|origin| self.allow(origin, host))
    }
}

/// Refuse requests from web pages that may not call these routes.
async fn check_origin(State(origins): State<Origins>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN)
        && !origins.allow_request(origin, request.headers())
    {
        let origin = excerpt(origin.to_str().unwrap_or("?"));
        tracing::info!(
            origin,
            "tutorial route refused to a web page of another origin"
        );
        return ApiError::new(
            StatusCode::FORBIDDEN,
            20403,
            format!(
                "Forbidden: pages from {origin} may not call this route; the operator can allow them with --cors-origin"
            ),
        )
        .into_response();
    }
    next.run(request).await
}

pub fn router(origins: Origins) -> Router<AppState> {
    let cors_origins = origins.clone();
    Router::new()
        .route("/create-token", post(create_token))
        .route("/auth/token", post(auth_token))
        .route("/rooms/create", post(create_room))
        .route("/rooms", get(active_rooms))
        .route("/rooms/{sid}", get(room))
        .route("/rooms/complete/{sid}", post(complete_room))
        // Set here, inside the CORS layer, so preflights (OPTIONS) reach it.
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(middleware::from_fn_with_state(origins, check_origin))
        .layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::predicate(move |origin, parts| {
                    cors_origins.allow_request(origin, &parts.headers)
                }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_of_the_demo_app_and_listed_origins_are_allowed_others_are_not() {
        let origins = Origins::new(
            "https://video.example.com",
            &["http://localhost:5173/".into()],
        );
        let allow = |origin: &str, host: &str| origins.allow(origin, Some(host));
        // The public URL, and what the operator listed.
        assert!(allow("https://video.example.com", "video.example.com"));
        assert!(allow("https://VIDEO.example.com", "anything"));
        assert!(allow("http://localhost:5173", "localhost:3000"));
        // The page's own origin, loaded from localhost or an IP address.
        assert!(allow("http://localhost:3000", "localhost:3000"));
        assert!(allow("http://127.0.0.1:3000", "127.0.0.1:3000"));
        assert!(allow("http://[::1]:3000", "[::1]:3000"));
        assert!(allow("http://192.168.1.5:3000", "192.168.1.5:3000"));
        // Any other page, even one whose name points here (DNS rebinding).
        assert!(!allow("https://evil.example", "localhost:3000"));
        assert!(!allow(
            "http://rebound.evil.example:3000",
            "rebound.evil.example:3000"
        ));
        assert!(!allow("null", "localhost:3000"));
        assert!(!origins.allow("http://localhost:3000", None));
        // `*` restores the tutorials' open CORS.
        let open = Origins::new("http://localhost:3000", &["*".into()]);
        assert!(open.allow("https://evil.example", Some("localhost:3000")));
    }
}
