//! The Twilio Video v1 REST API under `/v1`.
//!
//! Every route requires HTTP Basic auth (`APIKeySid:Secret` or
//! `AccountSid:AuthToken`); an address that keeps failing it is throttled
//! ([`throttle`]). Reads come from the store; changes go through
//! the room service, which records them before answering. See
//! `docs/rest-api.md` for the resources, parameters and error codes.

pub mod composition_hooks;
pub mod compositions;
pub mod error;
pub mod params;
mod participants;
pub mod recordings;
pub mod resources;
pub mod rooms;
pub mod throttle;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::service::ServiceError;
use error::ApiError;

/// The `/v1` routes.
pub fn router(state: AppState) -> Router<AppState> {
    const PARTICIPANT: &str = "/v1/Rooms/{room}/Participants/{participant}";
    Router::new()
        .route("/v1/Rooms", get(rooms::list).post(rooms::create))
        .route("/v1/Rooms/{room}", get(rooms::fetch).post(rooms::update))
        .route("/v1/Rooms/{room}/Participants", get(participants::list))
        .route(
            PARTICIPANT,
            get(participants::fetch).post(participants::update),
        )
        .route(
            &format!("{PARTICIPANT}/PublishedTracks"),
            get(participants::published_tracks),
        )
        .route(
            &format!("{PARTICIPANT}/PublishedTracks/{{track}}"),
            get(participants::published_track),
        )
        .route(
            &format!("{PARTICIPANT}/SubscribedTracks"),
            get(participants::subscribed_tracks),
        )
        .route(
            &format!("{PARTICIPANT}/SubscribedTracks/{{track}}"),
            get(participants::subscribed_track),
        )
        // Twilio's Network Traversal Service (the helper libraries'
        // `client.tokens.create()`), under the same Basic auth.
        .route(
            "/2010-04-01/Accounts/{account}/Tokens.json",
            axum::routing::post(crate::connectivity::nts_token),
        )
        .route("/v1/Recordings", get(recordings::list))
        .route(
            "/v1/Recordings/{recording}",
            get(recordings::fetch).delete(recordings::delete),
        )
        .route("/v1/Recordings/{recording}/Media", get(recordings::media))
        .route("/v1/Rooms/{room}/Recordings", get(recordings::list_in_room))
        .route(
            "/v1/Rooms/{room}/Recordings/{recording}",
            get(recordings::fetch_in_room),
        )
        .route(
            "/v1/Rooms/{room}/RecordingRules",
            get(recordings::rules).post(recordings::update_rules),
        )
        .route(
            "/v1/Compositions",
            get(compositions::list).post(compositions::create),
        )
        .route(
            "/v1/CompositionHooks",
            get(composition_hooks::list).post(composition_hooks::create),
        )
        .route(
            "/v1/CompositionHooks/{hook}",
            get(composition_hooks::fetch)
                .post(composition_hooks::update)
                .delete(composition_hooks::delete),
        )
        .route(
            "/v1/Compositions/{composition}",
            get(compositions::fetch).delete(compositions::delete),
        )
        .route(
            "/v1/Compositions/{composition}/Media",
            get(compositions::media),
        )
        .route_layer(middleware::from_fn_with_state(state, require_auth))
        // Signed links: their signature is their authentication.
        .route(
            "/media/compositions/{composition}",
            get(compositions::download),
        )
        .route("/media/recordings/{recording}", get(recordings::download))
}

/// Refuse requests without valid Basic credentials (401, code 20003), and
/// every request from an address that failed too often (429, code 20429).
async fn require_auth(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    let now = std::time::Instant::now();
    if let Some(address) = address
        && let Err(wait) = state.auth_throttle.check(address, now)
    {
        let mut response = ApiError::too_many_requests().into_response();
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return response;
    }
    let authenticated = basic_credentials(request.headers())
        .and_then(|(user, password)| state.credentials.authenticate(&user, &password))
        .is_some();
    if !authenticated {
        if let Some(address) = address {
            state.auth_throttle.failed(address, now);
        }
        return ApiError::unauthenticated().into_response();
    }
    next.run(request).await
}

/// The user and password of an `Authorization: Basic …` header.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Path parameters; a path that cannot be decoded names no resource (404).
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(_) => Err(ApiError::not_found(&params::excerpt(parts.uri.path()))),
        }
    }
}

/// Map a room-service failure to its HTTP error.
pub fn service_error(e: ServiceError) -> ApiError {
    match e {
        ServiceError::Room(e) => ApiError::from(e),
        ServiceError::Store(e) if e.is_unavailable() => ApiError::database_unavailable(),
        ServiceError::Store(e) => ApiError::internal(e),
        ServiceError::Unavailable => ApiError::database_unavailable(),
        ServiceError::Closed => ApiError::unavailable("The server is shutting down"),
    }
}
