//! The demo app (`web/`) and the browser SDK (`sdk/js/`), embedded in the
//! binary: `GET /` is the demo, `GET /<file>` its other files, and
//! `GET /sdk/<file>` the SDK: its ES modules (`/sdk/salon-video.js` is the
//! entry point) and the script-tag build (`/sdk/salon-video.global.js`,
//! which defines `Twilio.Video`).
//!
//! The SDK is served to any origin (CORS `*`): an app served from elsewhere
//! imports it from Salon, as it would load twilio-video from Twilio's CDN.
//! It carries no credentials and reveals nothing the repository does not.
//!
//! Release builds carry the files inside the binary; debug builds read them
//! from the source tree, so editing the app needs no rebuild.

use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
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
    if let Some(rest) = path.strip_prefix("/sdk/") {
        let mut response = match method {
            // A cross-origin fetch() with headers of its own asks first.
            Method::OPTIONS => StatusCode::NO_CONTENT.into_response(),
            Method::GET | Method::HEAD => file::<SdkAssets>(rest).unwrap_or_else(|| {
                ApiError::not_found(&crate::rest::params::excerpt(path)).into_response()
            }),
            _ => ApiError::not_found(&crate::rest::params::excerpt(path)).into_response(),
        };
        allow_any_origin(&mut response);
        return response;
    }
    if method == Method::GET || method == Method::HEAD {
        let file = file::<WebAssets>(match path.trim_start_matches('/') {
            "" => "index.html",
            other => other,
        });
        if let Some(response) = file {
            return response;
        }
    }
    ApiError::not_found(&crate::rest::params::excerpt(path)).into_response()
}

/// CORS for the SDK's files: any page may import them (`<script
/// type="module">` and `import()` fetch in CORS mode), and a page isolated
/// with `Cross-Origin-Embedder-Policy` may load them with a plain `<script>`.
fn allow_any_origin(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    headers.insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    );
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
