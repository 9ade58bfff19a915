//! Politeness: a global rate of new connections, a cap on concurrent conversations per /24, and
//! (in [`crate::login`]) a cap on login attempts per host.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// A token bucket refilled continuously at `rate` per second, holding at most `burst` tokens.
#[derive(Debug)]
pub struct RateLimiter {
    state: tokio::sync::Mutex<Bucket>,
    rate: f64,
    burst: f64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl RateLimiter {
    /// `rate` new connections per second; bursts of at most a hundredth of a second's worth.
    pub fn new(rate: u32) -> RateLimiter {
        let rate = f64::from(rate.max(1));
        let burst = (rate / 100.0).max(1.0);
        RateLimiter { state: tokio::sync::Mutex::new(Bucket { tokens: burst, refilled: Instant::now() }), rate, burst }
    }

    /// Waits for one token.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut bucket = self.state.lock().await;
                let now = Instant::now();
                let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
                bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
                bucket.refilled = now;
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate)
            };
            tokio::time::sleep(wait.max(Duration::from_micros(50))).await;
        }
    }
}

/// At most `cap` conversations at once with any one /24.
#[derive(Debug)]
pub struct SubnetGate {
    cap: usize,
    active: Mutex<HashMap<u32, usize>>,
    released: Notify,
}

/// Holds a place in a /24 until dropped.
#[derive(Debug)]
pub struct SubnetPermit<'a> {
    gate: &'a SubnetGate,
    subnet: u32,
}

impl SubnetGate {
    /// A gate with `cap` places per /24.
    pub fn new(cap: usize) -> SubnetGate {
        SubnetGate { cap: cap.max(1), active: Mutex::new(HashMap::new()), released: Notify::new() }
    }

    /// Waits for a place in `ip`'s /24.
    pub async fn enter(&self, ip: Ipv4Addr) -> SubnetPermit<'_> {
        let subnet = u32::from(ip) >> 8;
        loop {
            let notified = self.released.notified();
            {
                let mut active = self.active.lock().expect("subnet gate lock");
                let count = active.entry(subnet).or_insert(0);
                if *count < self.cap {
                    *count += 1;
                    return SubnetPermit { gate: self, subnet };
                }
            }
            notified.await;
        }
    }

    /// Conversations now open with `ip`'s /24.
    pub fn active(&self, ip: Ipv4Addr) -> usize {
        let active = self.active.lock().expect("subnet gate lock");
        active.get(&(u32::from(ip) >> 8)).copied().unwrap_or(0)
    }
}

impl Drop for SubnetPermit<'_> {
    fn drop(&mut self) {
        let mut active = self.gate.active.lock().expect("subnet gate lock");
        if let Some(count) = active.get_mut(&self.subnet) {
            *count -= 1;
            if *count == 0 {
                active.remove(&self.subnet);
            }
        }
        drop(active);
        self.gate.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_spaces_acquisitions() {
        let limiter = RateLimiter::new(100);
        let start = Instant::now();
        for _ in 0..201 {
            limiter.acquire().await;
        }
        // 1 token at the start, then 200 more at 100/s: two seconds of virtual time.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(1990) && elapsed <= Duration::from_millis(2100), "{elapsed:?}");
    }

    #[tokio::test]
    async fn subnet_gate_never_exceeds_its_cap() {
        let gate = Arc::new(SubnetGate::new(2));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..20u8 {
            let (gate, peak) = (gate.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                let ip = Ipv4Addr::new(127, 16, 0, i);
                let _permit = gate.enter(ip).await;
                peak.fetch_max(gate.active(ip), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!(gate.active(Ipv4Addr::new(127, 16, 0, 1)), 0);
    }
}
