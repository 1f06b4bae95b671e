//! A webhook receiver on loopback for status callback tests: it records
//! every request and answers as the test says (accept, fail, hang,
//! redirect, answer slowly).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

/// How the receiver answers the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200.
    Accept,
    /// This status, immediately.
    Status(u16),
    /// Never answer.
    Hang,
    /// 302 to the same URL.
    RedirectToItself,
    /// 200, after this long.
    Slowly(Duration),
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: Method,
    /// The URL as the receiver reconstructs it: `http://{Host}{path?query}`.
    pub url: String,
    pub signature: Option<String>,
    pub idempotency_token: Option<String>,
    pub content_type: Option<String>,
    /// Body parameters (POST) or query parameters (GET), in order.
    pub params: Vec<(String, String)>,
    /// Body parameters only.
    pub body_params: Vec<(String, String)>,
    /// What the receiver answered (None: it hung).
    pub answered: Option<u16>,
}

impl Captured {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn event(&self) -> &str {
        self.param("StatusCallbackEvent").unwrap_or("")
    }
}

struct Inner {
    answers: Vec<Answer>,
    standing: Answer,
    captured: Vec<Captured>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    arrived: Arc<Notify>,
}

impl Receiver {
    /// Start answering `standing` to everything.
    pub async fn start(standing: Answer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver bound");
        let addr = listener.local_addr().expect("receiver address");
        let receiver = Receiver {
            addr,
            inner: Arc::new(Mutex::new(Inner {
                answers: Vec::new(),
                standing,
                captured: Vec::new(),
            })),
            arrived: Arc::new(Notify::new()),
        };
        let app = axum::Router::new()
            .fallback(record)
            .with_state(receiver.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        receiver
    }

    /// A URL on this receiver.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// Answer these, in order, before the standing answer.
    pub fn then(&self, answers: &[Answer]) {
        self.inner
            .lock()
            .unwrap()
            .answers
            .extend_from_slice(answers);
    }

    /// Change the standing answer.
    pub fn answer(&self, standing: Answer) {
        self.inner.lock().unwrap().standing = standing;
    }

    pub fn captured(&self) -> Vec<Captured> {
        self.inner.lock().unwrap().captured.clone()
    }

    /// Requests that were answered 2xx.
    pub fn delivered(&self) -> Vec<Captured> {
        self.captured()
            .into_iter()
            .filter(|c| c.answered.is_some_and(|s| (200..300).contains(&s)))
            .collect()
    }

    /// Wait until `done` holds for what was captured.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Captured]) -> bool,
    ) -> Vec<Captured> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.arrived.notified();
            let captured = self.captured();
            if done(&captured) {
                return captured;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let seen: Vec<String> = captured
                    .iter()
                    .map(|c| format!("{} → {:?}", c.event(), c.answered))
                    .collect();
                panic!("the receiver did not see {what} within {timeout:?}; it saw {seen:?}");
            }
        }
    }

    /// Wait until `event` was delivered (answered 2xx) `n` times in all.
    pub async fn wait_for_delivered(&self, event: &str, n: usize) -> Vec<Captured> {
        self.wait_until(
            &format!("{n} delivered {event}"),
            Duration::from_secs(20),
            |all| {
                all.iter()
                    .filter(|c| c.event() == event && c.answered.is_some_and(|s| s < 300))
                    .count()
                    >= n
            },
        )
        .await;
        self.delivered()
    }
}

async fn record(
    State(receiver): State<Receiver>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let host = text("host").unwrap_or_default();
    let url = format!("http://{host}{uri}");
    let body_params: Vec<(String, String)> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let params = if method == Method::GET {
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    } else {
        body_params.clone()
    };
    let answer = {
        let mut inner = receiver.inner.lock().unwrap();
        if inner.answers.is_empty() {
            inner.standing
        } else {
            inner.answers.remove(0)
        }
    };
    // A slow answer counts once it is sent, if the caller still waits.
    let answered = match answer {
        Answer::Accept => Some(200),
        Answer::Slowly(_) => None,
        Answer::Status(status) => Some(status),
        Answer::RedirectToItself => Some(302),
        Answer::Hang => None,
    };
    let index = {
        let mut inner = receiver.inner.lock().unwrap();
        inner.captured.push(Captured {
            method,
            url: url.clone(),
            signature: text("x-twilio-signature"),
            idempotency_token: text("i-twilio-idempotency-token"),
            content_type: text("content-type"),
            params,
            body_params,
            answered,
        });
        inner.captured.len() - 1
    };
    receiver.arrived.notify_waiters();
    match answer {
        Answer::Accept => StatusCode::OK.into_response(),
        Answer::Status(status) => StatusCode::from_u16(status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Answer::RedirectToItself => (StatusCode::FOUND, [(header::LOCATION, url)]).into_response(),
        Answer::Slowly(delay) => {
            tokio::time::sleep(delay).await;
            receiver.inner.lock().unwrap().captured[index].answered = Some(200);
            receiver.arrived.notify_waiters();
            StatusCode::OK.into_response()
        }
        Answer::Hang => {
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
    }
}

/// The signature an app computes for a request it received, as Twilio's
/// guide tells it to (written here independently of Salon's signer).
pub fn expected_signature(auth_token: &str, captured: &Captured) -> String {
    use base64::Engine;
    use hmac::Mac;
    let mut text = captured.url.clone();
    let mut params = captured.body_params.clone();
    params.sort();
    for (name, value) in params {
        text.push_str(&name);
        text.push_str(&value);
    }
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
