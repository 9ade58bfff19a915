//! TAXII status resources: what a POST did, kept for a while so the client can poll it.
//!
//! Kept in the store, so a client may poll any replica behind a load balancer, and bounded: each
//! lives [`StatusLimits::ttl`], at most [`StatusLimits::max`] are held in all and
//! [`StatusLimits::per_token`] per token (the oldest go first), and each lists at most [`LISTED`]
//! objects by id and version (the counts are always complete) with every sender-chosen string
//! clipped. An expired or evicted status is unknown: 404.

use std::time::Duration;

use botscope_store::{Lease, LeaseBounds, LeaseKind, Store, StoreError};
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

/// Status resources of POSTs, by id, in the store.
#[derive(Debug, Clone, Copy)]
pub struct Statuses {
    limits: StatusLimits,
}

impl Statuses {
    /// Statuses held to `limits`.
    pub fn new(limits: StatusLimits) -> Statuses {
        Statuses { limits }
    }

    /// Keeps a status for `owner` (a token id), making room by dropping the oldest.
    pub async fn insert(
        &self,
        store: &impl Store,
        id: &str,
        owner: &str,
        status: &Value,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let StatusLimits { ttl, max, per_token } = self.limits;
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let lease = Lease {
            kind: LeaseKind::TaxiiStatus,
            key: id.to_string(),
            owner: owner.to_string(),
            body: status.to_string(),
            expires_ms: now_ms.saturating_add(ttl_ms),
        };
        store.put_lease(&lease, LeaseBounds { max: max as u64, per_owner: per_token as u64 }, now_ms).await
    }

    /// A status `reader` may see: its own (any, for an admin), if not expired or evicted.
    pub async fn get(
        &self,
        store: &impl Store,
        id: &str,
        reader: &str,
        admin: bool,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let held = store.lease(LeaseKind::TaxiiStatus, id, now_ms).await?;
        Ok(held.filter(|held| admin || held.owner == reader).map(|held| held.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_token: usize) -> StatusLimits {
        StatusLimits { ttl: Duration::from_secs(60), max, per_token }
    }

    #[tokio::test]
    async fn statuses_expire_the_oldest_make_room_and_only_their_owner_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = botscope_store::SqliteStore::open(&dir.path().join("statuses.db"), 1).await.unwrap();
        let statuses = Statuses::new(limits(3, 2));
        let t0 = 1_800_000_000_000;
        let body = json!({"status": "complete"});
        statuses.insert(&store, "a1", "tok_a", &body, t0).await.unwrap();
        statuses.insert(&store, "a2", "tok_a", &body, t0 + 1000).await.unwrap();
        // A third of tok_a's pushes out its oldest, not another token's.
        statuses.insert(&store, "b1", "tok_b", &body, t0 + 2000).await.unwrap();
        statuses.insert(&store, "a3", "tok_a", &body, t0 + 3000).await.unwrap();
        let now = t0 + 4000;
        let get = |id: &'static str, reader: &'static str, admin: bool, at: i64| {
            let store = store.clone();
            async move { statuses.get(&store, id, reader, admin, at).await.unwrap() }
        };
        assert!(get("a1", "tok_a", false, now).await.is_none());
        assert_eq!(get("a2", "tok_a", false, now).await.as_deref(), Some(body.to_string().as_str()));
        assert!(get("b1", "tok_b", false, now).await.is_some());
        // Only its owner (or an admin) reads a status.
        assert!(get("b1", "tok_a", false, now).await.is_none());
        assert!(get("b1", "tok_a", true, now).await.is_some());
        // Full in all: the oldest of anyone goes.
        statuses.insert(&store, "c1", "tok_c", &body, now).await.unwrap();
        assert!(get("a2", "tok_a", false, now).await.is_none());
        // After the TTL nothing is answered.
        assert!(get("c1", "tok_c", false, now + 60_000).await.is_none());
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
