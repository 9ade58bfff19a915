//! What every login module shares: the dictionary in trial order, the per-host attempt budget, the
//! audit trail, and the outcome vocabulary.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use botscope_model::Service;
use tokio::sync::mpsc;

use crate::catalog::Credential;
use crate::conn::ConnError;
pub use crate::output::{Attempt, AuditEntry, Output};

/// How a login module's work on one service ended.
#[derive(Debug)]
pub enum LoginOutcome {
    /// A dictionary pair logged in.
    Found {
        /// Its id.
        credential_id: u32,
        /// Attempts made on this service.
        tried: u32,
    },
    /// The service gave access with no credentials.
    NoAuthentication,
    /// Every pair was tried and rejected.
    NotFound {
        /// Attempts made.
        tried: u32,
    },
    /// The host's attempt budget ran out first.
    BudgetExhausted {
        /// Attempts made.
        tried: u32,
    },
    /// The device stopped cooperating.
    Aborted {
        /// Attempts made before.
        tried: u32,
        /// Why.
        error: ConnError,
    },
}

impl LoginOutcome {
    /// Attempts made.
    pub fn tried(&self) -> u32 {
        match self {
            LoginOutcome::Found { tried, .. }
            | LoginOutcome::NotFound { tried }
            | LoginOutcome::BudgetExhausted { tried }
            | LoginOutcome::Aborted { tried, .. } => *tried,
            LoginOutcome::NoAuthentication => 0,
        }
    }
}

/// Everything a login module needs for one service.
pub struct LoginContext<'a> {
    /// The service.
    pub target: SocketAddr,
    /// Its protocol (for the audit trail).
    pub protocol: Service,
    credentials: &'a [Credential],
    budget: &'a AtomicU32,
    audit: Option<&'a mpsc::Sender<Output>>,
    tokens: &'a AtomicU64,
    attempts: &'a AtomicU64,
    outcomes: &'a Mutex<Outcomes>,
    retrying: AtomicBool,
}

impl<'a> LoginContext<'a> {
    /// A context over `credentials` drawing on the host's `budget`.
    pub fn new(
        target: SocketAddr,
        protocol: Service,
        credentials: &'a [Credential],
        budget: &'a AtomicU32,
        audit: Option<&'a mpsc::Sender<Output>>,
        shared: &'a Shared,
    ) -> LoginContext<'a> {
        LoginContext {
            target,
            protocol,
            credentials,
            budget,
            audit,
            tokens: &shared.tokens,
            attempts: &shared.attempts,
            outcomes: &shared.outcomes,
            retrying: AtomicBool::new(false),
        }
    }

    /// The pairs, in trial order.
    pub fn credentials(&self) -> &'a [Credential] {
        self.credentials
    }

    /// Takes one attempt from the host's budget; false when it is spent.
    pub fn take_attempt(&self) -> bool {
        let taken = self.budget.fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| left.checked_sub(1)).is_ok();
        if taken {
            self.attempts.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// Gives back an attempt that was never judged (the connection dropped before the answer).
    pub fn refund_attempt(&self) {
        self.budget.fetch_add(1, Ordering::AcqRel);
        self.attempts.fetch_sub(1, Ordering::Relaxed);
    }

    /// A fresh, unpredictable token for shell confirmation and digest nonces.
    pub fn token(&self) -> u64 {
        let mut state = self.tokens.fetch_add(0x9e37_79b9, Ordering::Relaxed) ^ std::process::id() as u64;
        botscope_net::splitmix(&mut state)
    }

    /// The next attempt repeats the last one on a fresh connection (counted as `retried`, and
    /// its audit line says so).
    pub fn retry(&self) {
        self.retrying.store(true, Ordering::Relaxed);
        self.count("retried");
    }

    /// No silent loss: after an `error` or `unconfirmed` answer the same pair is tried once more on
    /// a fresh connection (`retried` says whether this pair already was), then the next pair.
    pub fn retry_once_then_next(&self, retried: &mut bool, index: &mut usize) {
        if *retried {
            *retried = false;
            *index += 1;
        } else {
            *retried = true;
            self.retry();
        }
    }

    fn count(&self, outcome: &str) {
        let mut outcomes = self.outcomes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *outcomes.entry(self.protocol.as_str().to_string()).or_default().entry(outcome.to_string()).or_default() += 1;
    }

    /// Records an attempt in the audit trail (waits if the writer is behind: never drops) and
    /// counts its outcome for the summary.
    pub async fn audit(&self, credential_id: u32, outcome: Attempt) {
        self.count(outcome.as_str());
        let retry = self.retrying.swap(false, Ordering::Relaxed);
        if let Some(audit) = self.audit {
            let entry = AuditEntry {
                time: chrono::Utc::now(),
                ip: self.target.ip(),
                port: self.target.port(),
                protocol: self.protocol,
                credential_id,
                outcome,
                retry,
            };
            let _ = audit.send(Output::Audit(entry)).await;
        }
    }
}

/// Login attempts by protocol, then by outcome (`success`, `failure`, `error`, `unconfirmed`,
/// and `retried` for the attempts repeated on a fresh connection).
pub type Outcomes = BTreeMap<String, BTreeMap<String, u64>>;

/// Counters shared by every task of a run.
#[derive(Debug, Default)]
pub struct Shared {
    tokens: AtomicU64,
    /// Login attempts made so far.
    pub attempts: AtomicU64,
    outcomes: Mutex<Outcomes>,
}

impl Shared {
    /// Counters seeded for tokens.
    pub fn new(seed: u64) -> Arc<Shared> {
        Arc::new(Shared {
            tokens: AtomicU64::new(seed),
            attempts: AtomicU64::new(0),
            outcomes: Mutex::new(Outcomes::new()),
        })
    }

    /// Every attempt's outcome so far, per protocol.
    pub fn outcomes(&self) -> Outcomes {
        self.outcomes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}
