//! What pages read from the store and keep between requests, each with the version of the store
//! it was read at: answered again from the copy while the version holds, read again when it moves.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Values kept per key (a day range, a start time), the least recently used dropped first.
///
/// The lock is held while a value is read, so that callers asking for one while it is read wait
/// and share it instead of each reading it again (sixteen users at once would otherwise read a
/// national year's servers sixteen times over).
#[derive(Debug)]
pub(crate) struct Kept<K, V, Version> {
    entries: tokio::sync::Mutex<Vec<Entry<K, V, Version>>>,
    capacity: usize,
    /// How long a value is kept at most, whatever its version says: for versions that a writer of
    /// an older build does not raise.
    max_age: Option<Duration>,
}

#[derive(Debug)]
struct Entry<K, V, Version> {
    key: K,
    version: Version,
    value: Arc<V>,
    read_at: Instant,
    used: Instant,
}

/// Whether [`Kept::get`] answered from the copy or read the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answered {
    /// From the copy: the version had not moved.
    Kept,
    /// Read from the store.
    Read,
}

impl<K: PartialEq, V, Version: PartialEq> Kept<K, V, Version> {
    /// Keeps up to `capacity` keys' values, each for at most `max_age` if given.
    pub(crate) fn new(capacity: usize, max_age: Option<Duration>) -> Self {
        Kept { entries: tokio::sync::Mutex::new(Vec::new()), capacity: capacity.max(1), max_age }
    }

    /// The value of `key`: the copy if it was read at the version `version` finds now (and not
    /// longer ago than the maximum age), else what `read` reads, kept with that version.
    ///
    /// The version is read before the value, so a write between the two makes the next caller
    /// read again; a copy is never kept past a version it might not hold.
    pub(crate) async fn get<E, R>(
        &self,
        key: K,
        version: impl Future<Output = Result<Version, E>>,
        read: impl FnOnce() -> R,
    ) -> Result<(Arc<V>, Answered), E>
    where
        R: Future<Output = Result<V, E>>,
    {
        let mut entries = self.entries.lock().await;
        let version = version.await?;
        let now = Instant::now();
        let fresh = |entry: &Entry<K, V, Version>| self.max_age.is_none_or(|age| now - entry.read_at < age);
        if let Some(hit) = entries.iter_mut().find(|e| e.key == key && e.version == version && fresh(e)) {
            hit.used = now;
            return Ok((hit.value.clone(), Answered::Kept));
        }
        let value = Arc::new(read().await?);
        entries.retain(|e| e.key != key);
        if entries.len() >= self.capacity
            && let Some(oldest) = entries.iter().enumerate().min_by_key(|(_, e)| e.used).map(|(i, _)| i)
        {
            entries.swap_remove(oldest);
        }
        let now = Instant::now();
        entries.push(Entry { key, version, value: value.clone(), read_at: now, used: now });
        Ok((value, Answered::Read))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    async fn get(kept: &Kept<u8, String, u32>, key: u8, version: u32, value: &str) -> (String, Answered) {
        let value = value.to_string();
        let (got, answered) =
            kept.get(key, async { Ok::<_, ()>(version) }, || async { Ok::<_, ()>(value) }).await.unwrap();
        (got.to_string(), answered)
    }

    /// A copy answers while its version holds; a new version, another key, eviction and age each
    /// make it read again.
    #[tokio::test]
    async fn a_copy_answers_until_its_version_moves_or_it_is_dropped() {
        let kept = Kept::new(2, None);
        assert_eq!(get(&kept, 1, 7, "a").await, ("a".into(), Answered::Read));
        assert_eq!(get(&kept, 1, 7, "b").await, ("a".into(), Answered::Kept));
        assert_eq!(get(&kept, 1, 8, "c").await, ("c".into(), Answered::Read), "the version moved");
        assert_eq!(get(&kept, 2, 8, "d").await, ("d".into(), Answered::Read), "another key");
        assert_eq!(get(&kept, 1, 8, "e").await, ("c".into(), Answered::Kept), "both kept");
        assert_eq!(get(&kept, 3, 8, "f").await, ("f".into(), Answered::Read));
        // Key 2 was the least recently used of the two.
        assert_eq!(get(&kept, 2, 8, "g").await, ("g".into(), Answered::Read), "dropped for room");
        assert_eq!(get(&kept, 3, 8, "h").await, ("f".into(), Answered::Kept));
        // A failed read keeps nothing and answers the error.
        let failed = kept.get(4, async { Ok::<_, &str>(8) }, || async { Err::<String, _>("down") }).await;
        assert_eq!(failed.unwrap_err(), "down");
        let aged = Kept::new(2, Some(Duration::ZERO));
        assert_eq!(get(&aged, 1, 7, "a").await.1, Answered::Read);
        assert_eq!(get(&aged, 1, 7, "b").await, ("b".into(), Answered::Read), "older than the maximum age");
    }
}
