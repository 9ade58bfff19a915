//! TAXII status resources: what a POST did, kept for a while so the client can poll it.
//!
//! Held in memory, so everything about them is bounded: each lives [`StatusLimits::ttl`], at most
//! [`StatusLimits::max`] are held in all and [`StatusLimits::per_token`] per token (the oldest go
//! first), and each lists at most [`LISTED`] objects by id and version (the counts are always
//! complete) with every sender-chosen string clipped. An expired or evicted status is unknown: 404.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Objects a status lists by id (failures first, then successes); the counts cover all of them.
pub const LISTED: usize = 50;
/// Longest object id a status repeats, bytes (a STIX id is a type of at most 250 characters and a
/// UUID; real ones are well under this).
pub(super) const ID_BYTES: usize = 128;
/// Longest version (a timestamp) a status repeats, bytes.
pub(super) const VERSION_BYTES: usize = 64;
/// Longest failure message, bytes.
const MESSAGE_BYTES: usize = 160;

/// How long statuses live and how many are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusLimits {
    /// How long a status can be read after its POST.
    pub ttl: Duration,
    /// Statuses held in all.
    pub max: usize,
    /// Statuses held per token.
    pub per_token: usize,
}

pub(super) fn clip(text: &str, bytes: usize) -> String {
    let mut end = text.len().min(bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The outcome of one POST, object by object, kept small as it goes.
#[derive(Debug, Default)]
pub struct Tally {
    total: usize,
    successes: usize,
    failures: usize,
    listed_failures: Vec<Value>,
    listed_successes: Vec<Value>,
}

impl Tally {
    /// An object stored (or already there).
    pub fn success(&mut self, id: &str, version: &str) {
        self.total += 1;
        self.successes += 1;
        if self.listed_successes.len() < LISTED {
            self.listed_successes.push(json!({ "id": clip(id, ID_BYTES), "version": clip(version, VERSION_BYTES) }));
        }
    }

    /// An object refused, and why.
    pub fn failure(&mut self, id: &str, version: &str, message: &str) {
        self.total += 1;
        self.failures += 1;
        if self.listed_failures.len() < LISTED {
            self.listed_failures.push(json!({
                "id": clip(id, ID_BYTES),
                "version": clip(version, VERSION_BYTES),
                "message": clip(message, MESSAGE_BYTES),
            }));
        }
    }

    /// The status resource (failures get the listing room first: they are what a client acts on).
    pub fn into_status(mut self, id: &str, request_timestamp: &str) -> Value {
        let room = LISTED.saturating_sub(self.listed_failures.len());
        self.listed_successes.truncate(room);
        json!({
            "id": id,
            "status": "complete",
            "request_timestamp": request_timestamp,
            "total_count": self.total,
            "success_count": self.successes,
            "successes": self.listed_successes,
            "failure_count": self.failures,
            "failures": self.listed_failures,
            "pending_count": 0,
            "pendings": [],
        })
    }
}

struct Held {
    owner: String,
    at: Instant,
    /// The status as sent: one string, not a tree of values.
    body: Arc<str>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Held>,
    /// Ids, oldest first (every status lives equally long, so this is also expiry order).
    order: VecDeque<String>,
    per_owner: HashMap<String, usize>,
}

impl Inner {
    fn remove(&mut self, id: &str) {
        if let Some(held) = self.by_id.remove(id)
            && let Some(n) = self.per_owner.get_mut(&held.owner)
        {
            *n -= 1;
            if *n == 0 {
                self.per_owner.remove(&held.owner);
            }
        }
    }

    fn expire(&mut self, ttl: Duration, now: Instant) {
        while let Some(id) = self.order.front() {
            match self.by_id.get(id) {
                Some(held) if now.duration_since(held.at) < ttl => break,
                _ => {
                    let id = self.order.pop_front().unwrap_or_default();
                    self.remove(&id);
                }
            }
        }
    }
}

/// Status resources of POSTs, by id.
#[derive(Clone)]
pub struct Statuses {
    inner: Arc<Mutex<Inner>>,
    limits: StatusLimits,
}

impl Statuses {
    /// An empty set held to `limits`.
    pub fn new(limits: StatusLimits) -> Statuses {
        Statuses { inner: Arc::default(), limits }
    }

    /// Keeps a status for `owner` (a token id), making room by dropping the oldest.
    pub fn insert(&self, id: &str, owner: &str, status: &Value, now: Instant) {
        let StatusLimits { ttl, max, per_token } = self.limits;
        if max == 0 || per_token == 0 || ttl.is_zero() {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else { return };
        inner.expire(ttl, now);
        while inner.per_owner.get(owner).is_some_and(|n| *n >= per_token) {
            let Some(position) = inner.order.iter().position(|i| inner.by_id.get(i).is_some_and(|h| h.owner == owner))
            else {
                break;
            };
            if let Some(oldest) = inner.order.remove(position) {
                inner.remove(&oldest);
            }
        }
        while inner.by_id.len() >= max {
            let Some(oldest) = inner.order.pop_front() else { break };
            inner.remove(&oldest);
        }
        inner.by_id.insert(id.to_string(), Held { owner: owner.to_string(), at: now, body: status.to_string().into() });
        inner.order.push_back(id.to_string());
        *inner.per_owner.entry(owner.to_string()).or_default() += 1;
    }

    /// A status `reader` may see: its own (any, for an admin), if not expired or evicted.
    pub fn get(&self, id: &str, reader: &str, admin: bool, now: Instant) -> Option<Arc<str>> {
        let mut inner = self.inner.lock().ok()?;
        inner.expire(self.limits.ttl, now);
        inner.by_id.get(id).filter(|held| admin || held.owner == reader).map(|held| held.body.clone())
    }

    /// Statuses held now.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|inner| inner.by_id.len()).unwrap_or(0)
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_token: usize) -> StatusLimits {
        StatusLimits { ttl: Duration::from_secs(60), max, per_token }
    }

    #[test]
    fn statuses_expire_and_the_oldest_make_room() {
        let statuses = Statuses::new(limits(3, 2));
        let t0 = Instant::now();
        let body = json!({"status": "complete"});
        statuses.insert("a1", "tok_a", &body, t0);
        statuses.insert("a2", "tok_a", &body, t0 + Duration::from_secs(1));
        // A third of tok_a's pushes out its oldest, not another token's.
        statuses.insert("b1", "tok_b", &body, t0 + Duration::from_secs(2));
        statuses.insert("a3", "tok_a", &body, t0 + Duration::from_secs(3));
        let now = t0 + Duration::from_secs(4);
        assert!(statuses.get("a1", "tok_a", false, now).is_none());
        assert!(statuses.get("a2", "tok_a", false, now).is_some());
        assert!(statuses.get("b1", "tok_b", false, now).is_some());
        // Only its owner (or an admin) reads a status.
        assert!(statuses.get("b1", "tok_a", false, now).is_none());
        assert!(statuses.get("b1", "tok_a", true, now).is_some());
        // Full in all: the oldest of anyone goes.
        statuses.insert("c1", "tok_c", &body, now);
        assert_eq!(statuses.len(), 3);
        assert!(statuses.get("a2", "tok_a", false, now).is_none());
        // After the TTL nothing is left.
        assert!(statuses.get("c1", "tok_c", false, now + Duration::from_secs(60)).is_none());
        assert!(statuses.is_empty());
    }

    #[test]
    fn a_status_lists_a_bounded_number_of_clipped_ids_and_counts_them_all() {
        let mut tally = Tally::default();
        let long = "x".repeat(100_000);
        for _ in 0..1000 {
            tally.failure(&long, &long, &long);
            tally.success("indicator--1", "2026-11-01T00:00:00.000Z");
        }
        let status = tally.into_status("s", "2026-11-01T00:00:00.000Z");
        assert_eq!((status["total_count"].as_u64(), status["failure_count"].as_u64()), (Some(2000), Some(1000)));
        assert_eq!(status["success_count"], 1000);
        assert_eq!(status["failures"].as_array().map(Vec::len), Some(LISTED));
        assert_eq!(status["successes"].as_array().map(Vec::len), Some(0));
        assert!(status.to_string().len() < LISTED * 512, "{} bytes", status.to_string().len());
    }
}
