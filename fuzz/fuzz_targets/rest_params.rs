//! Any REST request's parameters, read the way the `/v1` handlers read them
//! (`crates/server/src/rest/params.rs`, `rooms.rs`, `mod.rs`): the query
//! string and the body through `Params`' extractor, then every typed
//! reading a handler makes — a room request (`POST /v1/Rooms`) settled by
//! the room core, dates, numbers, booleans, paging — and the Basic
//! credentials of an `Authorization` header.
//!
//! The input is one byte choosing the method and content type, then the
//! query string, a newline, and the body (which is also tried as the
//! `Authorization` header's value). Must hold: no panic; every refusal is a
//! 4xx with a Twilio code and a message; names match ignoring case and
//! underscores; credentials read back are the
//! base64 text they came from, the user without a colon.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{HeaderMap, HeaderValue, Method, Request, header};
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use salon_server::rest::basic_credentials;
use salon_server::rest::error::ApiError;
use salon_server::rest::params::Params;
use salon_server::rest::rooms::room_request;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime")
    })
}

fn refused(error: ApiError) {
    assert!(error.status.is_client_error(), "{error:?}");
    assert!(
        error.code >= 20000 && !error.message.is_empty(),
        "{error:?}"
    );
}

fn read(params: &Params) -> Result<(), ApiError> {
    let request = room_request(params)?;
    salon_room::Config::default()
        .settle(&request)
        .map_err(ApiError::from)?;
    Ok(())
}

fn typed_readings(params: &Params) {
    if let Err(e) = read(params) {
        refused(e);
    }
    for result in [
        params.page().map(drop),
        params.datetime("DateCreatedAfter").map(drop),
        params.datetime("DateCreatedBefore").map(drop),
        params.number("MaxParticipants", 53107).map(drop),
        params.boolean("AudioOnly").map(drop),
    ] {
        if let Err(e) = result {
            refused(e);
        }
    }
    // Names match ignoring case and underscores; `get` is the first of `all`.
    for (name, alias) in [("UniqueName", "unique_name"), ("Status", "STATUS")] {
        assert_eq!(params.get(name), params.get(alias));
        assert_eq!(params.get(name), params.all(name).first().copied());
        assert_eq!(
            params.text(name),
            params.get(name).filter(|v| !v.is_empty())
        );
    }
}

fn credentials(value: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value.clone());
    let Some((user, password)) = basic_credentials(&headers) else {
        return;
    };
    assert!(!user.contains(':'));
    let text = value.to_str().expect("credentials come from a text header");
    let (scheme, encoded) = text.trim().split_once(' ').expect("scheme and value");
    assert!(scheme.eq_ignore_ascii_case("basic"));
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .expect("credentials were base64");
    assert_eq!(decoded, format!("{user}:{password}").into_bytes());
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let split = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    let (query, body) = (&rest[..split], rest.get(split + 1..).unwrap_or(&[]));

    credentials(body);

    // Form and JSON bodies directly, as the extractor would pick them.
    for parsed in [Params::from_form(body), Params::from_json(body)] {
        match parsed {
            Ok(params) => typed_readings(&params),
            Err(e) => refused(e),
        }
    }

    // The extractor: query, method, content type, body limit.
    let method = if choice & 1 == 0 {
        Method::POST
    } else {
        Method::GET
    };
    let content_type = match (choice >> 1) % 3 {
        0 => "application/x-www-form-urlencoded",
        1 => "application/json",
        _ => "text/plain",
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let uri = if query.is_empty() {
        "/v1/Rooms".to_owned()
    } else {
        format!("/v1/Rooms?{query}")
    };
    // A request line hyper would refuse never reaches the extractor.
    let Ok(request) = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_vec()))
    else {
        return;
    };
    match runtime().block_on(Params::from_request(request, &())) {
        Ok(params) => typed_readings(&params),
        Err(e) => refused(e),
    }
});
