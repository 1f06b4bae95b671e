//! [`Sender`]: the task that empties the outbox.
//!
//! One loop owns the scheduling; each request runs in a task of its own.
//! The loop wakes when callbacks were committed (the store's doorbell), when
//! a request finishes, or when the next backing-off head is due, and then:
//! takes due heads into free slots (leasing each in the store so it is not
//! due again while in flight), records what became of finished requests,
//! and refreshes the backlog figures. All store writes happen in the loop,
//! one at a time.

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use salon_room::CallbackMethod;
use salon_store::{OutboxCallback, Store, StoreError, Timestamp};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::destination::{Destinations, Refused};
use super::{CallbackConfig, DropReason, SharedStats, signature};
use crate::credentials::Credentials;

/// How long a stopping server keeps delivering what is due (the
/// `room-ended` callbacks of the rooms the shutdown ended, typically).
/// Whatever is left waits in the outbox for the next start.
const DRAIN: Duration = Duration::from_secs(5);

/// Most of a response body read (and thrown away) so the connection can be
/// reused.
const MAX_BODY: usize = 64 * 1024;

/// How often the backlog figures are refreshed while something changes.
const BACKLOG_REFRESH: Duration = Duration::from_secs(1);

/// Longest error text kept in the outbox and the logs.
const MAX_ERROR: usize = 300;

/// The outbox's sender. See the module docs of [`crate::callbacks`].
pub struct Sender {
    store: Store,
    credentials: Arc<Credentials>,
    config: CallbackConfig,
    policy: Destinations,
    stats: SharedStats,
    http: reqwest::Client,
}

/// What one pass over the due heads did.
#[derive(Debug, Default)]
struct Taken {
    /// Callbacks were started or dropped.
    started: bool,
    /// The store failed; pause before the next pass.
    store_failed: bool,
}

/// Why an attempt did not deliver.
#[derive(Debug)]
enum Failure {
    /// Trying again will not help: drop the callback now.
    Refused(String),
    /// Try again later.
    Failed(String),
}

impl Sender {
    pub fn new(
        store: Store,
        credentials: Arc<Credentials>,
        config: CallbackConfig,
        stats: SharedStats,
    ) -> Result<Self, reqwest::Error> {
        let policy = Destinations {
            allow_private_network: config.allow_private_network,
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "Salon/",
                env!("CARGO_PKG_VERSION"),
                " (status callbacks)"
            ))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .dns_resolver(policy.resolver())
            .build()?;
        Ok(Self {
            store,
            credentials,
            config,
            policy,
            stats,
            http,
        })
    }

    /// Deliver until `stop` turns true, then drain for a few seconds.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let sender = Arc::new(self);
        match sender
            .store
            .rearm_callbacks(Timestamp::now(), sender.store.node())
            .await
        {
            Ok(0) => {}
            Ok(rearmed) => tracing::info!(
                rooms = rearmed,
                "status callbacks left from before the start: retrying them now"
            ),
            Err(e) => tracing::error!(error = %e, "cannot read the status callback outbox"),
        }
        let mut flights: JoinSet<(OutboxCallback, Result<(), Failure>)> = JoinSet::new();
        // Streams with a request under way, and the task carrying it.
        let mut in_flight: HashMap<String, tokio::task::Id> = HashMap::new();
        let mut draining_until: Option<Instant> = None;
        let mut backlog_refreshed: Option<Instant> = None;
        let mut backlog_dirty = true;
        loop {
            let taken = sender.take_due(&mut flights, &mut in_flight).await;
            backlog_dirty |= taken.started;
            if backlog_dirty && backlog_refreshed.is_none_or(|at| at.elapsed() >= BACKLOG_REFRESH) {
                sender.refresh_backlog().await;
                backlog_refreshed = Some(Instant::now());
                backlog_dirty = false;
            }
            sender
                .stats
                .in_flight
                .store(in_flight.len() as i64, Relaxed);

            let next_due = match sender.store.next_callback_due().await {
                Ok(due) => due.map(until),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the status callback outbox; trying again in a second");
                    Some(Duration::from_secs(1))
                }
            };
            // A slot must be free for a due head to matter.
            let next_due = next_due.filter(|_| in_flight.len() < sender.config.concurrency);
            let refresh = backlog_dirty.then(|| {
                backlog_refreshed.map_or(Duration::ZERO, |at| {
                    BACKLOG_REFRESH.saturating_sub(at.elapsed())
                })
            });
            // After a database error, pause rather than spin.
            let pause = taken.store_failed.then_some(Duration::from_secs(1));
            let wake = pause.or([next_due, refresh].into_iter().flatten().min());

            if let Some(deadline) = draining_until {
                let idle = flights.is_empty() && next_due.is_none_or(|d| !d.is_zero());
                if idle || Instant::now() >= deadline {
                    break;
                }
            }
            tokio::select! {
                changed = stop.changed(), if draining_until.is_none() => {
                    if changed.is_err() || *stop.borrow() {
                        draining_until = Some(Instant::now() + DRAIN);
                    }
                }
                () = sender.store.callbacks_enqueued() => backlog_dirty = true,
                Some(done) = flights.join_next_with_id(), if !flights.is_empty() => {
                    backlog_dirty = true;
                    match done {
                        Ok((_, (callback, outcome))) => {
                            in_flight.remove(&callback.stream);
                            sender.settle(callback, outcome).await;
                        }
                        // A request task that panicked: its callback is tried
                        // again when its lease runs out.
                        Err(e) => {
                            in_flight.retain(|_, task| *task != e.id());
                            tracing::error!(error = %e, "a status callback request task failed");
                        }
                    }
                }
                () = sleep(wake) => {}
                () = sleep(draining_until.map(|d| d.saturating_duration_since(Instant::now()))) => {}
            }
        }
        let abandoned = flights.len();
        flights.shutdown().await;
        sender.stats.in_flight.store(0, Relaxed);
        if abandoned > 0 {
            tracing::info!(
                requests = abandoned,
                "status callbacks still in flight at shutdown: they will be retried at the next start"
            );
        }
        tracing::debug!("status callback sender stopped");
    }

    /// Start due heads in free slots.
    async fn take_due(
        self: &Arc<Self>,
        flights: &mut JoinSet<(OutboxCallback, Result<(), Failure>)>,
        in_flight: &mut HashMap<String, tokio::task::Id>,
    ) -> Taken {
        let mut taken = Taken::default();
        let free = self.config.concurrency.saturating_sub(in_flight.len());
        if free == 0 {
            return taken;
        }
        let now = Timestamp::now();
        // In-flight heads are leased, so they are not among the due ones.
        let due = match self.store.due_callbacks(now, free).await {
            Ok(due) => due,
            Err(e) => {
                report_store_error(&e);
                taken.store_failed = true;
                return taken;
            }
        };
        for callback in due {
            if in_flight.len() >= self.config.concurrency {
                break;
            }
            if in_flight.contains_key(&callback.stream) {
                continue;
            }
            taken.started = true;
            let age = Duration::from_millis(
                u64::try_from(now.millis() - callback.created.millis()).unwrap_or(0),
            );
            if age > self.config.max_age {
                let why = format!("not delivered within {:?}", self.config.max_age);
                self.drop_callback(&callback, DropReason::Age, &why).await;
                continue;
            }
            // Not due again while in flight, however long the request takes.
            let lease = Timestamp::from_millis(
                now.millis() + (self.config.timeout + Duration::from_secs(5)).as_millis() as i64,
            );
            // Another node's sender may have taken it since it was read.
            match self
                .store
                .lease_callback(&callback, lease, self.store.node())
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    report_store_error(&e);
                    taken.store_failed = true;
                    break;
                }
            }
            let stream = callback.stream.clone();
            let sender = self.clone();
            let task = flights.spawn(async move {
                let outcome = sender.deliver(&callback).await;
                (callback, outcome)
            });
            in_flight.insert(stream, task.id());
        }
        taken
    }

    /// Record what became of one attempt.
    async fn settle(&self, callback: OutboxCallback, outcome: Result<(), Failure>) {
        let now = Timestamp::now();
        let written = match outcome {
            Ok(()) => {
                self.stats.delivered.fetch_add(1, Relaxed);
                tracing::debug!(
                    room = %callback.stream,
                    event = %callback.event,
                    sequence = callback.sequence,
                    attempts = callback.attempts + 1,
                    "status callback delivered"
                );
                self.store
                    .remove_callback(&callback.stream, callback.sequence, now)
                    .await
            }
            Err(Failure::Refused(why)) => {
                self.drop_callback(&callback, DropReason::Refused, &why)
                    .await;
                Ok(())
            }
            Err(Failure::Failed(why)) => {
                self.stats.failed_attempts.fetch_add(1, Relaxed);
                let failures = callback.attempts + 1;
                if failures >= self.config.max_attempts {
                    let why = format!("{failures} attempts failed, the last: {why}");
                    self.drop_callback(&callback, DropReason::Attempts, &why)
                        .await;
                    return;
                }
                let delay = self.config.retry_delay(failures);
                // The first failure of a callback says so; the retries of a
                // receiver that stays down would flood the log.
                if failures == 1 {
                    tracing::warn!(
                        room = %callback.stream,
                        event = %callback.event,
                        url = %redacted(&callback.url),
                        error = %why,
                        retry_in = ?delay,
                        "status callback failed; retrying"
                    );
                } else {
                    tracing::debug!(
                        room = %callback.stream,
                        event = %callback.event,
                        attempts = failures,
                        error = %why,
                        retry_in = ?delay,
                        "status callback failed again"
                    );
                }
                let at = Timestamp::from_millis(now.millis() + delay.as_millis() as i64);
                self.store
                    .retry_callback(&callback.stream, callback.sequence, at, &why)
                    .await
            }
        };
        if let Err(e) = written {
            report_store_error(&e);
        }
    }

    async fn drop_callback(&self, callback: &OutboxCallback, reason: DropReason, why: &str) {
        self.stats.dropped(reason);
        tracing::warn!(
            room = %callback.stream,
            event = %callback.event,
            sequence = callback.sequence,
            url = %redacted(&callback.url),
            attempts = callback.attempts,
            reason = ?reason,
            error = why,
            "status callback dropped"
        );
        if let Err(e) = self
            .store
            .remove_callback(&callback.stream, callback.sequence, Timestamp::now())
            .await
        {
            report_store_error(&e);
        }
    }

    async fn refresh_backlog(&self) {
        match self.store.callback_backlog().await {
            Ok(backlog) => {
                self.stats.backlog.store(
                    i64::try_from(backlog.callbacks).unwrap_or(i64::MAX),
                    Relaxed,
                );
                let oldest = backlog.oldest.map_or(0, |t| {
                    Timestamp::now().millis().saturating_sub(t.millis()) / 1000
                });
                self.stats.oldest_seconds.store(oldest.max(0), Relaxed);
            }
            Err(e) => report_store_error(&e),
        }
    }

    /// One attempt: check the destination, sign, send, judge the answer.
    async fn deliver(&self, callback: &OutboxCallback) -> Result<(), Failure> {
        let mut url = url::Url::parse(&callback.url)
            .map_err(|e| Failure::Refused(format!("the URL does not parse: {e}")))?;
        self.policy
            .check_url(&url)
            .map_err(|Refused(why)| Failure::Refused(why))?;
        let Some(auth_token) = self.credentials.auth_token(callback.account) else {
            return Err(Failure::Refused(format!(
                "account {} is not served here, so nothing can sign its callbacks",
                callback.account
            )));
        };
        // The receiver sees neither the fragment nor the credentials of the
        // URL, so neither is signed; credentials go in `Authorization`.
        url.set_fragment(None);
        let user = percent_decode(url.username());
        let password = url.password().map(percent_decode);
        let _ = url.set_username("");
        let _ = url.set_password(None);

        let request = match callback.method {
            CallbackMethod::Post => {
                let signature = signature::sign(&auth_token, url.as_str(), &callback.params);
                self.http
                    .post(url)
                    .form(&callback.params)
                    .header("X-Twilio-Signature", signature)
            }
            CallbackMethod::Get => {
                url.query_pairs_mut().extend_pairs(&callback.params);
                let signature = signature::sign(&auth_token, url.as_str(), &[]);
                self.http.get(url).header("X-Twilio-Signature", signature)
            }
        };
        let mut request = request.header(
            "I-Twilio-Idempotency-Token",
            format!("{}-{}", callback.stream, callback.sequence),
        );
        if !user.is_empty() {
            request = request.basic_auth(user, password);
        }
        let attempt = async {
            let mut response = request.send().await.map_err(classify)?;
            let status = response.status();
            let mut read = 0;
            while read < MAX_BODY {
                match response.chunk().await {
                    Ok(Some(chunk)) => read += chunk.len(),
                    _ => break,
                }
            }
            if status.is_success() {
                Ok(())
            } else if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or("");
                Err(Failure::Failed(clip(format!(
                    "HTTP {status}: redirects are not followed (Location: {location})"
                ))))
            } else {
                Err(Failure::Failed(format!("HTTP {status}")))
            }
        };
        // reqwest's timeout covers the request; this one covers reading
        // the body too.
        tokio::time::timeout(self.config.timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Failed(format!(
                    "no complete answer within {:?}",
                    self.config.timeout
                )))
            })
    }
}

/// A refusal by the resolver is final; anything else may pass.
fn classify(error: reqwest::Error) -> Failure {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(Refused(why)) = cause.downcast_ref::<Refused>() {
            return Failure::Refused(why.clone());
        }
        source = cause.source();
    }
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    // The innermost cause says the most ("Connection refused").
    let mut detail = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    Failure::Failed(clip(format!("{what}: {detail}")))
}

fn clip(mut text: String) -> String {
    if text.len() > MAX_ERROR {
        let mut end = MAX_ERROR;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The URL without credentials, for logs.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut url) => {
            let _ = url.set_password(None);
            let _ = url.set_username("");
            url.into()
        }
        Err(_) => clip(url.to_owned()),
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn report_store_error(error: &StoreError) {
    tracing::error!(error = %error, "cannot update the status callback outbox");
}

/// How long from now until `at` (zero if past).
fn until(at: Timestamp) -> Duration {
    Duration::from_millis(u64::try_from(at.millis() - Timestamp::now().millis()).unwrap_or(0))
}

async fn sleep(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}
