//! [`Credentials`]: the accounts and API keys this server trusts right now.
//!
//! Verifying a token or a REST call must not touch the database, so the keys
//! live in memory as an immutable snapshot that readers share. A background
//! task watches the database for commits by other processes (`salon keys
//! revoke` run beside the server) and swaps in a fresh snapshot, so a
//! revocation takes effect within one [`RELOAD_INTERVAL`].

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use salon_sid::{AccountSid, ApiKeySid};
use salon_store::{Account, Store};
use salon_token::{ApiKey, Keyring, Rejection, VerifiedToken, Verifier};
use subtle::ConstantTimeEq;

use crate::metrics::Metrics;

/// How often the database is checked for credential changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Snapshot {
    keyring: Keyring,
    accounts: Vec<Account>,
    /// Key SIDs, oldest first.
    key_order: Vec<ApiKeySid>,
}

/// Who may call the REST API and whose tokens verify.
pub struct Credentials {
    account: AccountSid,
    snapshot: RwLock<Arc<Snapshot>>,
    verifier: Verifier,
    metrics: Arc<Metrics>,
}

impl Credentials {
    /// Load `account` and its keys from the store. Other accounts' keys
    /// neither verify nor authenticate here.
    pub async fn load(
        store: &Store,
        account: AccountSid,
        metrics: Arc<Metrics>,
    ) -> salon_store::Result<Self> {
        let credentials = Self {
            account,
            snapshot: RwLock::new(Arc::default()),
            verifier: Verifier::default(),
            metrics,
        };
        credentials.reload(store).await?;
        Ok(credentials)
    }

    /// Re-read accounts and keys from the store.
    pub async fn reload(&self, store: &Store) -> salon_store::Result<()> {
        let accounts: Vec<Account> = store
            .accounts()
            .await?
            .into_iter()
            .filter(|a| a.sid == self.account)
            .collect();
        let mut keyring = Keyring::new();
        let mut key_order = Vec::new();
        for record in store
            .api_keys()
            .await?
            .into_iter()
            .filter(|k| k.account_sid == self.account)
        {
            key_order.push(record.sid);
            let mut key = ApiKey::new(record.sid, record.account_sid, record.secret);
            key.revoked_at = record.date_revoked.map(|t| t.unix_seconds().max(0) as u64);
            keyring.insert(key);
        }
        let fresh = Arc::new(Snapshot {
            keyring,
            accounts,
            key_order,
        });
        *self
            .snapshot
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Check HTTP Basic credentials: an API key SID and its secret (key not
    /// revoked), or an account SID and its auth token. Returns the account.
    pub fn authenticate(&self, user: &str, password: &str) -> Option<AccountSid> {
        let snapshot = self.snapshot();
        if let Ok(sid) = user.parse::<ApiKeySid>() {
            let key = snapshot.keyring.get(&sid)?;
            let matches: bool = key.secret().as_bytes().ct_eq(password.as_bytes()).into();
            return (matches && !key.is_revoked()).then_some(key.account_sid);
        }
        let sid = user.parse::<AccountSid>().ok()?;
        let account = snapshot.accounts.iter().find(|a| a.sid == sid)?;
        let matches: bool = account
            .auth_token
            .as_bytes()
            .ct_eq(password.as_bytes())
            .into();
        matches.then_some(account.sid)
    }

    /// The account this server serves.
    pub fn account(&self) -> AccountSid {
        self.account
    }

    /// The auth token of `account`, which signs its status callbacks.
    pub fn auth_token(&self, account: AccountSid) -> Option<String> {
        self.snapshot()
            .accounts
            .iter()
            .find(|a| a.sid == account)
            .map(|a| a.auth_token.clone())
    }

    /// Verify an access token against the current keys, counting the result.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, Rejection> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let result = self.verifier.verify(token, &self.snapshot().keyring, now);
        self.metrics
            .token_verified(result.as_ref().err().map(Rejection::code));
        result
    }

    /// Verify the token of a session being resumed: as [`Self::verify`],
    /// but a token past its `exp` is judged as of its last valid second.
    /// The official SDK sends its original token again when it resumes
    /// (it has no way to refresh it); signature, key, account and identity
    /// still have to hold, and the session itself is the proof of
    /// admission.
    pub fn verify_for_resume(&self, token: &str) -> Result<VerifiedToken, Rejection> {
        match self.verify(token) {
            Err(Rejection::Expired { expired_at, .. }) => {
                let at = expired_at.saturating_sub(1);
                self.verifier.verify(token, &self.snapshot().keyring, at)
            }
            other => other,
        }
    }

    /// The key used to sign tokens minted by the tutorial routes: the oldest
    /// key of `account` that is not revoked.
    pub fn signing_key(&self, account: AccountSid) -> Option<ApiKey> {
        let snapshot = self.snapshot();
        snapshot
            .key_order
            .iter()
            .filter_map(|sid| snapshot.keyring.get(sid))
            .find(|k| k.account_sid == account && !k.is_revoked())
            .cloned()
    }

    /// A key of this account by SID, revoked or not.
    pub fn key(&self, sid: ApiKeySid) -> Option<ApiKey> {
        self.snapshot().keyring.get(&sid).cloned()
    }

    /// How many keys are loaded and how many of them are revoked.
    pub fn key_counts(&self) -> (usize, usize) {
        let snapshot = self.snapshot();
        let revoked = snapshot.keyring.iter().filter(|k| k.is_revoked()).count();
        (snapshot.keyring.len(), revoked)
    }

    /// Watch the store and reload when another process changes it, until
    /// `stop` resolves.
    pub async fn watch(self: Arc<Self>, store: Store, stop: tokio::sync::watch::Receiver<bool>) {
        let mut stop = stop;
        let mut watcher = match store.watch().await {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch the database; key changes need a restart");
                return;
            }
        };
        let mut tick = tokio::time::interval(RELOAD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            match watcher.changed().await {
                Ok(false) => {}
                Ok(true) => {
                    if let Err(e) = self.reload(&store).await {
                        tracing::warn!(error = %e, "reloading credentials failed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "checking the database for changes failed"),
            }
        }
        watcher.close().await;
    }
}
