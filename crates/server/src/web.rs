//! The demo app (`web/`) and the browser SDK (`sdk/js/`), embedded in the
//! binary: `GET /` is the demo, `GET /<file>` its other files, and
//! `GET /sdk/<file>` the SDK's ES modules (`/sdk/salon-video.js` is the
//! entry point).
//!
//! Release builds carry the files inside the binary; debug builds read them
//! from the source tree, so editing the app needs no rebuild.

use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::rest::error::ApiError;

#[derive(RustEmbed)]
#[folder = "../../web/"]
struct WebAssets;

#[derive(RustEmbed)]
#[folder = "../../sdk/js/"]
struct SdkAssets;

/// Serve an embedded file for `GET`/`HEAD`, or Twilio's 404 for anything
/// that is not one.
pub async fn serve(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if method == Method::GET || method == Method::HEAD {
        let file = match path.strip_prefix("/sdk/") {
            Some(rest) => file::<SdkAssets>(rest),
            None => file::<WebAssets>(match path.trim_start_matches('/') {
                "" => "index.html",
                other => other,
            }),
        };
        if let Some(response) = file {
            return response;
        }
    }
    ApiError::not_found(&crate::rest::params::excerpt(path)).into_response()
}

fn file<A: RustEmbed>(path: &str) -> Option<Response> {
    // No directory traversal: embedded names are plain relative paths.
    if path.split('/').any(|part| part == ".." || part.is_empty()) {
        return None;
    }
    let asset = A::get(path)?;
    let mime = asset.metadata.mimetype().to_owned();
    let mut response = asset.data.into_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&mime)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    // Revalidate every time: the files change with each release and are small.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
}
