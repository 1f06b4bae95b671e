//! Sessions that can be resumed: a detached session waits, under its id,
//! for a new connection that proves the same identity.
//!
//! Each front-end keeps its own [`Resumables`] (its connections are its
//! own type); the check is the same for both: [`resume`].

use std::collections::HashMap;
use std::sync::Mutex;

use salon_signal::codes;
use tokio::sync::mpsc;

use super::Refusal;
use crate::AppState;

/// Open sessions of one front-end, by session id: whose they are and where
/// a new connection `C` is handed to them.
pub struct Resumables<C> {
    sessions: Mutex<HashMap<String, Resumable<C>>>,
}

struct Resumable<C> {
    identity: String,
    attach: mpsc::Sender<C>,
}

impl<C> Default for Resumables<C> {
    fn default() -> Self {
        Self {
            sessions: Mutex::default(),
        }
    }
}

impl<C> Resumables<C> {
    /// Register the session `id` of `identity`; new connections for it
    /// arrive on the returned receiver. Forget it when it ends.
    pub fn register(&self, id: &str, identity: &str) -> mpsc::Receiver<C> {
        let (attach, attached) = mpsc::channel(1);
        let resumable = Resumable {
            identity: identity.to_owned(),
            attach,
        };
        self.lock().insert(id.to_owned(), resumable);
        attached
    }

    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    fn find(&self, id: &str) -> Option<(String, mpsc::Sender<C>)> {
        self.lock()
            .get(id)
            .map(|r| (r.identity.clone(), r.attach.clone()))
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Resumable<C>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How a resume judges its token's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// An expired token is refused (20104).
    Enforced,
    /// An expired token still proves its identity (the official SDK sends
    /// its original token again, whatever its age).
    Tolerated,
}

/// Hand `connection` to the session `session` if `token` is valid and
/// names the session's identity; otherwise the refusal, and the connection
/// back to say it on.
pub async fn resume<C>(
    state: &AppState,
    sessions: &Resumables<C>,
    token: &str,
    session: &str,
    expiry: Expiry,
    connection: C,
) -> Result<(), (C, Refusal)> {
    let verified = match expiry {
        Expiry::Enforced => state.credentials.verify(token),
        Expiry::Tolerated => state.credentials.verify_for_resume(token),
    };
    let verified = match verified {
        Ok(verified) => verified,
        Err(rejection) => return Err((connection, rejection.into())),
    };
    match sessions.find(session) {
        Some((identity, attach)) if identity == verified.identity => {
            if attach.send(connection).await.is_err() {
                tracing::debug!("resume raced with the session ending");
            }
            Ok(())
        }
        Some(_) => Err((
            connection,
            Refusal::new(20106, "the token's identity is not the session's"),
        )),
        None => Err((
            connection,
            Refusal::new(
                codes::PARTICIPANT_NOT_FOUND,
                "Participant not found: no such session to resume (it has ended)",
            ),
        )),
    }
}
