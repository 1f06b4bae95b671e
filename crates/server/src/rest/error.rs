//! [`ApiError`]: every failure the HTTP API reports, rendered as Twilio does:
//! `{"code": 20404, "message": "…", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use salon_room::RoomError;
use serde::Serialize;

/// A Twilio-shaped error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    code: u32,
    message: &'a str,
    more_info: String,
    status: u16,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with a Twilio code naming what was wrong.
    pub fn bad_request(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 400, code 20001: a parameter value Salon cannot use and for which
    /// Twilio has no more specific code.
    pub fn invalid_parameter(name: &str, detail: impl std::fmt::Display) -> Self {
        Self::bad_request(20001, format!("Invalid parameter {name}: {detail}"))
    }

    /// 404, code 20404, naming the path as Twilio does.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            20404,
            format!("The requested resource {path} was not found"),
        )
    }

    /// 401, code 20003.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            20003,
            "Authenticate: use HTTP Basic auth with an API key SID and secret, or the account SID and auth token",
        )
    }

    /// 405, code 20004.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, 20004, "Method not allowed")
    }

    /// 413, code 20413: Twilio's convention of 20 followed by the HTTP status.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            20413,
            format!("Request body too large: the limit is {} KiB", limit / 1024),
        )
    }

    /// 429, code 20429: this address failed to authenticate too often.
    pub fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            20429,
            "Too Many Requests: too many failed authentications from this address; wait before trying again",
        )
    }

    /// 500, code 20500. The detail goes to the log, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            "Internal server error",
        )
    }

    /// 503, code 20503: the server is shutting down or overloaded.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, 20503, message)
    }

    /// 503, code 20503: the database is away (see [`crate::recorder`]).
    pub fn database_unavailable() -> Self {
        Self::unavailable(
            "The database is unavailable: rooms in progress go on, but no new rooms until it returns",
        )
    }
}

impl From<RoomError> for ApiError {
    fn from(e: RoomError) -> Self {
        match e {
            RoomError::RoomNotFound(_) | RoomError::ParticipantNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, 20404, e.to_string())
            }
            other => Self::bad_request(other.code(), other.to_string()),
        }
    }
}

impl From<salon_store::StoreError> for ApiError {
    fn from(e: salon_store::StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            return Self::database_unavailable();
        }
        Self::internal(e)
    }
}

impl ApiError {
    /// Twilio's JSON body for this error.
    pub fn body(&self) -> String {
        let body = Body {
            code: self.code,
            message: &self.message,
            more_info: format!("https://www.twilio.com/docs/errors/{}", self.code),
            status: self.status.as_u16(),
        };
        // A struct of strings and numbers always serializes.
        serde_json::to_string(&body).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.body(),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Salon\""),
            );
        }
        response
    }
}
