//! Where botscope keeps its records: the [`Store`] trait and its two implementations.
//!
//! SQLite ([`SqliteStore`]) is the default, one file beside the operator; PostgreSQL
//! ([`PostgresStore`]) serves a centre with remote sensors. Both embed their migrations and run
//! them on open, and both pass the same test suite (`tests/suite.rs`).
//!
//! Every write is one transaction: a caller that got `Ok` back may rely on the data being there
//! after a crash, and a batch that failed left nothing behind. Records are keyed by their stable
//! id, so writing the same record twice stores it once.
//!
//! Boundaries: keeps and returns records; it does not judge them (what a sender may write is the
//! centre's rule, `botscope_center::admit`) and connects only to its own database.
#![deny(missing_docs)]

mod error;
mod partitions;
mod postgres;
mod sqlite;
mod url;

use std::future::Future;

use botscope_model::{Isp, Kind, Record, RoutedPrefix, Timestamp};
use chrono::NaiveDate;
use uuid::Uuid;

pub use error::StoreError;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use url::{StoreUrl, redact};

/// The database's migrations against this build's (see [`Store::schema`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Schema {
    /// The newest migration applied to the database.
    pub applied: i64,
    /// The newest migration this build carries.
    pub expected: i64,
}

impl Schema {
    /// The database has every migration this build carries (a newer one is fine: migrations only
    /// add).
    pub fn is_current(&self) -> bool {
        self.applied >= self.expected
    }
}

/// The newest migration applied, as sqlx records it; the same query on both backends.
const APPLIED_SCHEMA: &str = "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success";

/// The newest migration a backend's embedded migrator carries.
fn expected_schema(migrator: &sqlx::migrate::Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// A column the botnet list is sorted by in the store ([`Store::botnets_page`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotnetColumn {
    /// The serial number, in number order (`BN-2026-9999` before `BN-2026-10000`).
    Serial,
    /// The family, byte by byte (none as empty).
    Family,
    /// The status word.
    Status,
    /// How many bots.
    Members,
    /// The first sighting.
    FirstSeen,
    /// The last sighting (the time a botnet is filed under).
    LastSeen,
    /// The confidence (none before any).
    Confidence,
    /// Who reported it, as the list shows them (in the botnet's order, one space between),
    /// byte by byte (none as empty).
    Reporters,
}

/// Which botnets a list holds: those a view's date range overlaps. A botnet is filed under its
/// last sighting (`since` bounds that, through the time index); an end date keeps those first
/// seen before it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BotnetSpan {
    /// Only botnets last seen at or after this time.
    pub since: Option<Timestamp>,
    /// Only botnets first seen before midnight UTC starting this day (a view's end: the day
    /// after its last).
    pub first_seen_before: Option<NaiveDate>,
}

/// A botnet and the C&C server it used last, as [`Store::botnet_current_servers`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotnetCurrentServer {
    /// The botnet record's id (to read the record itself).
    pub id: Uuid,
    /// The botnet's serial number.
    pub serial: String,
    /// The server with the latest `last_seen`, of equal ones the later in the botnet's list (as
    /// `Iterator::max_by_key` picks); `None` for a botnet without servers.
    pub server: Option<(std::net::IpAddr, u16)>,
    /// Its first sighting (for a view's end date).
    pub first_seen: Timestamp,
}

/// What a batch write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutSummary {
    /// Records new to the store, and `cnc` records that replaced an earlier revision.
    pub inserted: u64,
    /// Records whose id was already stored (left as they were).
    pub duplicates: u64,
}

impl PutSummary {
    /// Adds another batch's counts.
    pub fn add(&mut self, other: PutSummary) {
        self.inserted += other.inserted;
        self.duplicates += other.duplicates;
    }
}

/// The routing snapshot attribution currently uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingSnapshot {
    /// Where it was loaded from (a file name, normally).
    pub source: String,
    /// When it was loaded.
    pub loaded_at: Timestamp,
    /// How many prefixes it holds.
    pub prefixes: u64,
}

/// A page of records, in id order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordQuery {
    /// Only this kind; all kinds when `None`.
    pub kind: Option<Kind>,
    /// Only records whose id sorts after this one (for paging).
    pub after: Option<Uuid>,
    /// At most this many.
    pub limit: u32,
    /// Only records filed at or after this time (see [`Record::time`]).
    pub since: Option<Timestamp>,
    /// Only records filed before this time.
    pub until: Option<Timestamp>,
    /// Only records about this address (see [`Record::address`]).
    pub ip: Option<std::net::IpAddr>,
    /// Only records whose address is in this prefix. PostgreSQL answers through an index; SQLite
    /// reads the rows the other filters leave and keeps those in the prefix.
    pub prefix: Option<ipnet::IpNet>,
    /// Only records whose address is in one of these prefixes (an AS's routed prefixes, see
    /// [`Store::prefixes_originated_by`]); none at all when the list is empty. Answered like
    /// `prefix`, and bounded by [`MAX_PREFIXES_ANY`].
    pub within_any: Option<Vec<ipnet::IpNet>>,
    /// Only records about one of these addresses (through the address index); none at all when
    /// the list is empty. At most [`MAX_ADDRESSES_ANY`]: ask in chunks.
    pub ip_any: Option<Vec<std::net::IpAddr>>,
    /// Only records of this ISP: whose `isp` field is this handle, or a comma-joined list of
    /// handles that holds it (a host in a prefix several ISPs share).
    pub isp: Option<String>,
    /// Only records whose `port` field is this.
    pub port: Option<u16>,
    /// Only records whose `serial` field is this (botnets and their windows).
    pub serial: Option<String>,
    /// Only records whose `status` field is this (notifications, botnets, services).
    pub status: Option<String>,
    /// Only records whose `sensor` field is this.
    pub sensor: Option<String>,
    /// Only records whose `collection` field is this (TAXII objects).
    pub collection: Option<String>,
    /// Only outcomes of one of these notification cases (through the outcomes' case index);
    /// none at all when the list is empty. At most [`MAX_ADDRESSES_ANY`]: ask in chunks.
    pub cases_any: Option<Vec<Uuid>>,
}

impl RecordQuery {
    /// Whether a record of a page meets the prefix filter, which SQLite applies after reading.
    fn in_prefix(&self, record: &Record) -> bool {
        // As stored, like PostgreSQL's `inet` comparison: an IPv4-mapped IPv6 address is in
        // `::ffff:0:0/96` prefixes, not IPv4 ones, on both backends.
        let address = record.address();
        let within = |prefix: &ipnet::IpNet| address.is_some_and(|ip| prefix.contains(&ip));
        self.prefix.as_ref().is_none_or(within) && self.within_any.as_ref().is_none_or(|any| any.iter().any(within))
    }

    /// Whether an empty prefix or address list rules out every record.
    fn matches_nothing(&self) -> bool {
        self.within_any.as_ref().is_some_and(Vec::is_empty) || self.ip_any.as_ref().is_some_and(Vec::is_empty)
    }

    /// Whether SQLite must read rows and keep those in the prefixes.
    fn by_prefix(&self) -> bool {
        self.prefix.is_some() || self.within_any.is_some()
    }

    /// Refuses a prefix or address list too long to put in one query.
    fn check_prefixes(&self) -> Result<(), StoreError> {
        match (&self.within_any, &self.ip_any) {
            (Some(any), _) if any.len() > MAX_PREFIXES_ANY => Err(StoreError::TooManyPrefixes { prefixes: any.len() }),
            (_, Some(any)) if any.len() > MAX_ADDRESSES_ANY => Err(StoreError::TooManyPrefixes { prefixes: any.len() }),
            _ => Ok(()),
        }
    }
}

/// One API token of the centre, as stored: its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Public id (shown in lists, used to revoke).
    pub id: String,
    /// Hex SHA-256 of the token.
    pub hash: String,
    /// What the token may do.
    pub role: botscope_model::Role,
    /// The ISP an `isp` token belongs to.
    pub isp: Option<String>,
    /// What the operator called it; a sensor token writes records under this name.
    pub label: String,
    /// Further sensor names the token may write records under (set by the admin at creation).
    pub sensors: Vec<String>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// What a [`Lease`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseKind {
    /// A signed-in page session: key a hash of the cookie, owner the token's hash, body the
    /// session's CSRF value.
    Session,
    /// A TAXII status resource: key its id, owner the posting token's id, body the status JSON.
    TaxiiStatus,
}

impl LeaseKind {
    fn as_str(self) -> &'static str {
        match self {
            LeaseKind::Session => "session",
            LeaseKind::TaxiiStatus => "taxii_status",
        }
    }
}

/// A short-lived entry that every replica of the centre must see, so that any of them can answer
/// the next request: see [`Store::put_lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// What it is.
    pub kind: LeaseKind,
    /// Its key, unique within its kind.
    pub key: String,
    /// Who it belongs to (bounded per owner).
    pub owner: String,
    /// What it holds.
    pub body: String,
    /// When it stops being answered, Unix milliseconds.
    pub expires_ms: i64,
}

/// How many leases of one kind are kept; past either bound the ones expiring first make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseBounds {
    /// In all.
    pub max: u64,
    /// Per owner: one owner cannot push everyone else's out.
    pub per_owner: u64,
}

/// Addresses one query may ask about (see [`RecordQuery::ip_any`]).
pub const MAX_ADDRESSES_ANY: usize = 1_000;

/// Prefixes one query may search within (see [`RecordQuery::within_any`]).
pub const MAX_PREFIXES_ANY: usize = 1_024;

/// Rows a SQLite prefix search reads before it gives up (see [`StoreError::TooBroad`]).
const MAX_PREFIX_SCAN: usize = 200_000;

/// Stale rate counts one [`Store::count_hit`] removes in passing: enough that the table never
/// holds much more than the keys counted within one window, few enough that a hit stays cheap.
const STALE_COUNTS_PER_HIT: i64 = 16;

/// Storage every part of botscope shares.
///
/// Implementations must make each method one transaction and must be safe to share between tasks.
pub trait Store: Send + Sync {
    /// Which database this is, for messages.
    fn describe(&self) -> String;

    /// Stores records that are not stored yet, in one transaction. Records must carry their id
    /// (see [`Record::ensure_id`]); ISP records also update the ISP registry. A `cnc` record whose
    /// id is stored replaces it when it is a later revision (its window was scored again, see
    /// [`botscope_model::CncCandidate::revision_order`]); any other record with a stored id is
    /// left out.
    fn put_records(&self, records: &[Record]) -> impl Future<Output = Result<PutSummary, StoreError>> + Send;

    /// Stores records, replacing those already stored under the same id, in one transaction: for
    /// the centre's own records that change (botnets, notifications). Returns how many were
    /// written.
    fn upsert_records(&self, records: &[Record]) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The id and address of every record of a kind that has an address, without reading bodies:
    /// how the centre resolves the record ids sensors cite.
    fn record_addresses(
        &self,
        kind: Kind,
    ) -> impl Future<Output = Result<Vec<(Uuid, std::net::IpAddr)>, StoreError>> + Send;

    /// Counts stored records, of one kind or of all.
    fn count_records(&self, kind: Option<Kind>) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Counts the records of `kind` filed at or after `since` (see [`Record::time`]), only those
    /// whose `status` field is `status` if given: through the indexes, for a figure that needs
    /// no record read (how many botnets, how many of them active).
    fn count_since(
        &self,
        kind: Kind,
        since: Option<Timestamp>,
        status: Option<&str>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The C&C servers of the botnets filed at or after `since` (a botnet is filed under its last
    /// sighting), as (serial, address, port) in botnet record id order and each botnet's own order:
    /// which botnet a server belongs to, without reading every botnet whole.
    fn botnet_servers(
        &self,
        since: Option<Timestamp>,
    ) -> impl Future<Output = Result<Vec<(String, std::net::IpAddr, u16)>, StoreError>> + Send;

    /// Every botnet filed at or after `since` with the server it used last, in botnet record id
    /// order: what the list sorts by the current C&C and its liveness, without decoding every
    /// botnet whole (0.84 s of CPU for a national year's 48,586).
    fn botnet_current_servers(
        &self,
        since: Option<Timestamp>,
    ) -> impl Future<Output = Result<Vec<BotnetCurrentServer>, StoreError>> + Send;

    /// How many botnets `span` holds, through the time index and (for an end date) each one's
    /// first sighting, without decoding any.
    fn count_botnets(&self, span: BotnetSpan) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// One page of the botnets `span` holds, sorted by `column` (descending when asked; ties,
    /// and the serial itself, in serial number order), after skipping `offset`: a page of a
    /// national list without reading every botnet.
    fn botnets_page(
        &self,
        span: BotnetSpan,
        column: BotnetColumn,
        descending: bool,
        offset: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Record>, StoreError>> + Send;

    /// One record by id.
    fn record(&self, id: Uuid) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send;

    /// The records with these ids, in no particular order; ids not stored are left out. One
    /// query per [`MAX_ADDRESSES_ANY`] ids, where a page read record by record waited for a
    /// pooled connection per record under load.
    fn records_by_id(&self, ids: &[Uuid]) -> impl Future<Output = Result<Vec<Record>, StoreError>> + Send;

    /// A page of records in id order.
    fn records(&self, query: &RecordQuery) -> impl Future<Output = Result<Vec<Record>, StoreError>> + Send;

    /// Replaces the routing table with a new snapshot, in one transaction.
    fn replace_routed_prefixes(
        &self,
        prefixes: &[RoutedPrefix],
        source: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The whole routing table.
    fn routed_prefixes(&self) -> impl Future<Output = Result<Vec<RoutedPrefix>, StoreError>> + Send;

    /// Where the routing table came from, if one was loaded.
    fn routing_snapshot(&self) -> impl Future<Output = Result<Option<RoutingSnapshot>, StoreError>> + Send;

    /// Replaces the ISP registry, in one transaction.
    fn replace_isps(&self, isps: &[Isp]) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The ISP registry, by handle.
    fn isps(&self) -> impl Future<Output = Result<Vec<Isp>, StoreError>> + Send;

    /// Stores a new API token.
    fn put_token(&self, token: &TokenRow) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The token with this hash, revoked or not.
    fn token_by_hash(&self, hash: &str) -> impl Future<Output = Result<Option<TokenRow>, StoreError>> + Send;

    /// Every token, oldest first.
    fn tokens(&self) -> impl Future<Output = Result<Vec<TokenRow>, StoreError>> + Send;

    /// Revokes a token by id; false when there is no such token.
    fn revoke_token(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Whether the database answers, and which migrations it has: one small query, for a
    /// readiness check.
    fn schema(&self) -> impl Future<Output = Result<Schema, StoreError>> + Send;

    /// Keeps a lease (replacing one with its kind and key) in one transaction, first dropping
    /// expired leases of its kind and, past `bounds`, those expiring first. A lease already
    /// expired at `now_ms`, or bounds of zero, keep nothing.
    fn put_lease(
        &self,
        lease: &Lease,
        bounds: LeaseBounds,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The lease of this kind and key, unless it expired by `now_ms` (or was dropped to make room).
    fn lease(
        &self,
        kind: LeaseKind,
        key: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send;

    /// Ends a lease now; false when there was none.
    fn drop_lease(&self, kind: LeaseKind, key: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Counts one hit on `key` in a fixed window of `window_ms` that starts at the key's first hit
    /// (a hit after the window ends starts a new one) and returns the hits in the current window,
    /// this one included: a rate limit every replica shares. Counts of ended windows are removed
    /// a few at a time as hits arrive.
    fn count_hit(&self, key: &str, window_ms: i64, now_ms: i64)
    -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Deletes up to `limit` records of `kind` from days before `before` (UTC) and returns how
    /// many it deleted: call again until fewer than `limit`. On PostgreSQL a month of a monthly
    /// kind (activity, services, findings) wholly before `before` goes at once, however many
    /// records it held, and counts on top of the batch. From the first call on, those days
    /// keep their daily roll-ups as counted: their marks are dropped and a record written later
    /// for one of them marks nothing (refresh the roll-ups first, or what waits to be counted is
    /// lost).
    fn prune(&self, kind: Kind, before: NaiveDate, limit: u32) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// How many records of `kind` are from days before `before` (UTC): what [`Store::prune`]
    /// would delete.
    fn count_before(&self, kind: Kind, before: NaiveDate) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The time ([`Record::time`]) of the latest record of a kind, through the time index.
    fn latest_time(&self, kind: Kind) -> impl Future<Output = Result<Option<Timestamp>, StoreError>> + Send;

    /// The routed prefixes (of the loaded routing table) that `asn` originates, alone, as one of
    /// several origins (MOAS) or within an AS set.
    fn prefixes_originated_by(&self, asn: u32) -> impl Future<Output = Result<Vec<ipnet::IpNet>, StoreError>> + Send;

    /// Up to `limit` days whose roll-ups are out of date (a record of theirs was written since
    /// the last refresh), in (day, kind) order after `after`.
    fn dirty_rollups(
        &self,
        after: Option<(NaiveDate, Kind)>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<DirtyDay>, StoreError>> + Send;

    /// Replaces one day's roll-up rows of one kind (and, for C&C reports, the day's servers), in
    /// one transaction, if the day's generation is still the one read and not yet counted;
    /// otherwise (a write since, or another refresher counted it) changes nothing. Returns whether
    /// it wrote.
    fn replace_rollups(
        &self,
        day: &DirtyDay,
        rows: &[RollupRow],
        servers: &[ServerRollup],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One metric's roll-up rows from `from` to `to` (days, inclusive; open where `None`) of the
    /// dimensions asked for, in day order.
    fn rollups(
        &self,
        kind: Kind,
        metric: &str,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        dims: &Dims,
    ) -> impl Future<Output = Result<Vec<(NaiveDate, RollupRow)>, StoreError>> + Send;

    /// Marks again every C&C day counted without its servers (by a replica of a build before
    /// the per-server roll-up), so that the next refresh counts them. Returns the days marked.
    fn mark_servers_uncounted(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The C&C servers reported from `from` to `to` (days of their last sighting, inclusive; open
    /// where `None`), one row per server and reporter with the days summed (in no set order).
    fn server_rollups(
        &self,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> impl Future<Output = Result<Vec<ServerRollup>, StoreError>> + Send;

    /// The generation of a kind of [`VERSIONED_KINDS`]: raised in the same transaction as every
    /// write and prune of the kind, so a reader that finds the generation it kept may keep what it
    /// read (0 before any write; always 0 for another kind). A replica of a build before this
    /// writes without raising it: readers bound how long they keep anything.
    fn record_version(&self, kind: Kind) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// What [`Store::server_rollups`] of the same range would read, in two numbers: the days of
    /// the range counted, and the sum of the generations they were counted at. A recount raises
    /// a day's generation and pruning never removes a counted day, so equal versions mean equal
    /// rows, and a reader may keep the servers it summed until the version moves (one small
    /// query instead of tens of thousands of rows).
    fn server_rollup_version(
        &self,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> impl Future<Output = Result<(u64, i64), StoreError>> + Send;
}

/// C&C server roll-up rows written per statement (ten values each, well under SQLite's limit of
/// 32,766 bound values).
const SERVER_ROWS_PER_INSERT: usize = 500;

/// The kinds whose daily roll-ups the store keeps (see [`Store::dirty_rollups`]).
pub const ROLLED_UP_KINDS: [Kind; 5] = [Kind::Activity, Kind::Finding, Kind::Notification, Kind::Service, Kind::Cnc];

/// A day whose roll-ups of one kind are out of date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyDay {
    /// The kind.
    pub kind: Kind,
    /// The day (UTC).
    pub day: NaiveDate,
    /// How many writes marked it so far (never repeats); [`Store::replace_rollups`] writes only
    /// for the latest.
    pub generation: i64,
}

/// Which dimensions of a roll-up metric to read. A centre with many ISPs keeps a row per ISP
/// (and per ISP and device type) each day; a page about the whole needs none of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dims {
    /// Every dimension.
    All,
    /// These dimensions only (`""` is the whole).
    Exactly(Vec<String>),
    /// The breakdown of one part: for `""` the dimensions without a `/` (`router`, and also
    /// ISP handles), for an ISP those under it (`hikari-net/router`). A superset: the caller
    /// keeps what it needs.
    Within(String),
}

/// One roll-up figure of one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRow {
    /// What is counted (`infected`, `notified`, ...).
    pub metric: String,
    /// Which part of the whole: empty for all of it, else an ISP, a device type, ...
    pub dim: String,
    /// The count (of records, or of distinct hosts when `hosts` is set).
    pub count: u64,
    /// The distinct hosts counted, encoded by whoever computes the roll-up.
    pub hosts: Option<Vec<u8>>,
}

/// One C&C server's reports from one reporter: of one day as the roll-up keeps it, or summed over
/// a range of days as [`Store::server_rollups`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRollup {
    /// The server's address.
    pub ip: std::net::IpAddr,
    /// Its port.
    pub port: u16,
    /// Its transport, as records name it (`tcp`, `udp`, `icmp`).
    pub protocol: String,
    /// The reporter (the sensor name of its reports; `None` for reports without one).
    pub sensor: Option<String>,
    /// Reports.
    pub reports: u64,
    /// The reports' first sighting, Unix seconds.
    pub first_seen: i64,
    /// Their last sighting, Unix seconds.
    pub last_seen: i64,
    /// The best score among them.
    pub best_score: f64,
    /// A family one of them named, if any did.
    pub family: Option<String>,
}

/// The days a batch of records dirties: the rolled-up kinds' record days.
fn rollup_days(records: &[&Record]) -> std::collections::BTreeSet<(String, String)> {
    records
        .iter()
        .filter(|r| ROLLED_UP_KINDS.contains(&r.kind()))
        .filter_map(|r| Some((r.kind().as_str().to_string(), r.time()?.date_naive().to_string())))
        .collect()
}

/// The ids of stored records whose day a batch must have counted again: rolled-up records that
/// may replace a stored one (every record when `replace`; otherwise C&C reports, which a later
/// revision replaces), since a revision can move a record to another day; and the cases the
/// batch's outcomes report on, since an outcome changes how its case counts.
fn replacing_ids(records: &[&Record], replace: bool) -> Vec<Uuid> {
    let replacing = records
        .iter()
        .filter(|r| ROLLED_UP_KINDS.contains(&r.kind()) && (replace || r.kind() == Kind::Cnc))
        .filter_map(|r| r.id());
    let cases = records.iter().filter_map(|r| match r {
        Record::Outcome(outcome) => Some(outcome.notification),
        _ => None,
    });
    // Sorted and once each: the lookup locks them, in the same order as every other batch does.
    let ids: std::collections::BTreeSet<Uuid> = replacing.chain(cases).collect();
    ids.into_iter().collect()
}

/// Ids looked up per statement for [`replacing_ids`].
const IDS_PER_LOOKUP: usize = 1_000;

/// The kinds whose records pages keep read between requests, with a generation every write and
/// prune of the kind raises ([`Store::record_version`]): correlation's botnets, whose current
/// servers the botnet list sorts by and `/cnc` names the botnet of each server by.
pub const VERSIONED_KINDS: [Kind; 1] = [Kind::Botnet];

/// The versioned kinds a batch holds, each once, in [`VERSIONED_KINDS`] order (every writer raises
/// them in the same order).
fn versioned_kinds_in(records: &[&Record]) -> Vec<Kind> {
    VERSIONED_KINDS.into_iter().filter(|kind| records.iter().any(|r| r.kind() == *kind)).collect()
}

/// Raises a kind's generation (`$1`: the kind), in the writing transaction.
const RAISE_VERSION: &str = "INSERT INTO record_versions (kind, generation) VALUES ($1, 1) \
     ON CONFLICT (kind) DO UPDATE SET generation = record_versions.generation + 1";

/// Marks a (kind, day) dirty; the generation counts the writes.
/// A day before the kind's retention ([`Store::prune`]) is not marked: its roll-ups stay as counted.
const MARK_DIRTY: &str = "INSERT INTO rollup_dirty (kind, day, generation, counted) SELECT $1, $2, 1, 0 \
     WHERE NOT EXISTS (SELECT 1 FROM retention WHERE retention.kind = $1 AND retention.before_day > $2) \
     ON CONFLICT (kind, day) DO UPDATE SET generation = rollup_dirty.generation + 1";

fn parse_day(text: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| StoreError::Corrupt { what: format!("roll-up day {text:?}"), reason: e.to_string() })
}

/// One schema migration this build carries, and whether the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Its number (`0005_typed_columns.sql` is 5).
    pub version: i64,
    /// What it does, from its file name.
    pub description: String,
    /// Whether the database has it.
    pub applied: bool,
    /// Applied, but from a file other than this build's (its checksum differs): someone edited a
    /// released migration, or the database was migrated by a build that carried another file
    /// under this number. `db upgrade` and opening the store refuse such a database.
    pub changed: bool,
}

/// The migrations `migrator` carries, each marked applied when `applied` lists its version (with
/// the checksum recorded when it was applied).
fn migrations_of(migrator: &sqlx::migrate::Migrator, applied: &[(i64, Vec<u8>)]) -> Vec<Migration> {
    migrator
        .iter()
        // A reversible migration's down file is no step of the schema (sqlx skips it too).
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| {
            let recorded = applied.iter().find(|(version, _)| *version == m.version);
            Migration {
                version: m.version,
                description: m.description.to_string(),
                applied: recorded.is_some(),
                changed: recorded.is_some_and(|(_, checksum)| checksum.as_slice() != &*m.checksum),
            }
        })
        .collect()
}

/// Whether a database error says the table asked for does not exist (SQLite's wording,
/// PostgreSQL's code): a database no botscope has opened yet has no migration table.
fn no_such_table(error: &dyn sqlx::error::DatabaseError) -> bool {
    error.message().contains("no such table") || error.code().as_deref() == Some("42P01")
}

/// The versions and checksums of the migrations applied, none for a database no botscope has
/// opened.
const APPLIED_VERSIONS: &str = "SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version";

/// A store opened from a URL: whichever backend the URL names.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PostgresStore),
}

impl AnyStore {
    /// Opens (creating a SQLite file if needed) and migrates the store at `url`.
    pub async fn open(url: &StoreUrl, max_connections: u32) -> Result<Self, StoreError> {
        Ok(match url {
            StoreUrl::Sqlite(path) => AnyStore::Sqlite(SqliteStore::open(path, max_connections).await?),
            StoreUrl::Postgres(url) => AnyStore::Postgres(PostgresStore::open(url, max_connections).await?),
        })
    }

    /// Opens the store at `url` without migrating it: to see which migrations it lacks before
    /// applying them ([`AnyStore::upgrade`]).
    pub async fn open_unmigrated(url: &StoreUrl, max_connections: u32) -> Result<Self, StoreError> {
        Ok(match url {
            StoreUrl::Sqlite(path) => AnyStore::Sqlite(SqliteStore::open_unmigrated(path, max_connections).await?),
            StoreUrl::Postgres(url) => AnyStore::Postgres(PostgresStore::open_unmigrated(url, max_connections).await?),
        })
    }

    /// How many write transactions are worth running at once. PostgreSQL commits batches side
    /// by side; SQLite has one writer at a time, and a second would only wait for the lock (or,
    /// having read first, be refused it).
    pub fn concurrent_writers(&self) -> usize {
        match self {
            AnyStore::Sqlite(_) => 1,
            AnyStore::Postgres(_) => 2,
        }
    }

    /// Every migration this build carries, oldest first, marked applied or not.
    pub async fn migrations(&self) -> Result<Vec<Migration>, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.migrations().await,
            AnyStore::Postgres(s) => s.migrations().await,
        }
    }

    /// Brings the query planner's statistics up to date after a bulk load. PostgreSQL analyses a
    /// table by itself only from time to time; right after a load its statistics may predate a
    /// whole kind, and a search planned on them can read every record of that kind (a port search
    /// over 700,000 findings just loaded: 0.34 s instead of 4 ms). SQLite plans without
    /// statistics here and is left alone.
    pub async fn refresh_statistics(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Sqlite(_) => Ok(()),
            AnyStore::Postgres(s) => s.analyze().await,
        }
    }

    /// Applies the migrations the database lacks, each in its own transaction, oldest first.
    pub async fn upgrade(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.upgrade().await,
            AnyStore::Postgres(s) => s.upgrade().await,
        }
    }
}

/// The migration methods, written once for both backends (each expands it where its own
/// `MIGRATOR` and pool are in scope).
macro_rules! migrations_on_every_backend {
    () => {
        /// Every migration this build carries, oldest first, marked applied or not.
        pub async fn migrations(&self) -> Result<Vec<crate::Migration>, StoreError> {
            let applied = match sqlx::query_as::<_, (i64, Vec<u8>)>(crate::APPLIED_VERSIONS).fetch_all(&self.pool).await
            {
                Ok(applied) => applied,
                Err(sqlx::Error::Database(error)) if crate::no_such_table(&*error) => Vec::new(),
                Err(error) => return Err(error.into()),
            };
            Ok(crate::migrations_of(&MIGRATOR, &applied))
        }

        /// Applies the migrations the database lacks.
        pub async fn upgrade(&self) -> Result<(), StoreError> {
            MIGRATOR.run(&self.pool).await.map_err(|source| StoreError::Migrate { url: self.describe(), source })
        }
    };
}
pub(crate) use migrations_on_every_backend;

/// `Store` methods whose SQL and row handling are the same on SQLite and PostgreSQL, written once
/// and expanded inside each backend's `impl Store` (where `self.pool` has the backend's type).
macro_rules! same_on_every_backend {
    () => {
        async fn count_records(&self, kind: Option<Kind>) -> Result<u64, StoreError> {
            let count: i64 = match kind {
                Some(kind) => {
                    sqlx::query_scalar("SELECT COUNT(*) FROM records WHERE kind = $1")
                        .bind(kind.as_str())
                        .fetch_one(&self.pool)
                        .await?
                }
                None => sqlx::query_scalar("SELECT COUNT(*) FROM records").fetch_one(&self.pool).await?,
            };
            Ok(count as u64)
        }

        async fn count_botnets(&self, span: crate::BotnetSpan) -> Result<u64, StoreError> {
            let mut select = sqlx::QueryBuilder::new("SELECT COUNT(*) FROM records WHERE kind = 'botnet'");
            Self::push_botnet_span(&mut select, span);
            let count: i64 = select.build_query_scalar().fetch_one(&self.pool).await?;
            Ok(count.max(0) as u64)
        }

        async fn botnets_page(
            &self,
            span: crate::BotnetSpan,
            column: crate::BotnetColumn,
            descending: bool,
            offset: u64,
            limit: u32,
        ) -> Result<Vec<Record>, StoreError> {
            // The page's ids are chosen on the sort keys alone, then only their bodies are read:
            // sorting whole rows carried every botnet's body through the sort (0.3 s of 48,000).
            let key = Self::botnet_sort_key(column);
            let direction = if descending { " DESC" } else { "" };
            // Serial numbers grow a digit now and then: the shorter one is the older.
            let order = |select: &mut sqlx::QueryBuilder<_>, key: Option<&str>, length: &str, serial: &str| {
                match key {
                    None => select.push(length).push(direction).push(", ").push(serial).push(direction),
                    Some(key) => select.push(key).push(direction).push(", ").push(length).push(", ").push(serial),
                };
            };
            let mut select = sqlx::QueryBuilder::new(Self::BOTNET_PAGE);
            select.push(" JOIN (SELECT id AS page_id, ").push(key.unwrap_or("NULL")).push(" AS page_key,");
            select.push(" length(serial) AS page_length, serial AS page_serial FROM records WHERE kind = 'botnet'");
            Self::push_botnet_span(&mut select, span);
            select.push(" ORDER BY ");
            order(&mut select, key, "length(serial)", "serial");
            select.push(" LIMIT ").push_bind(i64::from(limit));
            select.push(" OFFSET ").push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
            // The kind as well as the id: on PostgreSQL's partitioned table an id alone is looked
            // for in every month of every kind (a third of the page's time).
            select.push(") AS page ON records.id = page.page_id AND records.kind = 'botnet' ORDER BY ");
            order(&mut select, key.map(|_| "page_key"), "page_length", "page_serial");
            let rows = select.build().fetch_all(&self.pool).await?;
            rows.iter().map(|row| crate::decode_record(row.get(0), row.get(1))).collect()
        }

        async fn count_since(
            &self,
            kind: Kind,
            since: Option<botscope_model::Timestamp>,
            status: Option<&str>,
        ) -> Result<u64, StoreError> {
            let mut select = sqlx::QueryBuilder::new("SELECT COUNT(*) FROM records WHERE kind = ");
            select.push_bind(kind.as_str());
            if let Some(since) = since {
                select.push(" AND time >= ").push_bind(Self::time(since));
            }
            if let Some(status) = status {
                select.push(" AND status = ").push_bind(status.to_string());
            }
            let count: i64 = select.build_query_scalar().fetch_one(&self.pool).await?;
            Ok(count.max(0) as u64)
        }

        async fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
            let revoked = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(Self::now())
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected();
            Ok(revoked > 0)
        }

        async fn put_token(&self, token: &TokenRow) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO tokens (id, hash, role, isp, label, created_at, revoked_at, sensors) \
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)",
            )
            .bind(&token.id)
            .bind(&token.hash)
            .bind(token.role.as_str())
            .bind(&token.isp)
            .bind(&token.label)
            .bind(Self::time(token.created_at))
            .bind(serde_json::to_string(&token.sensors).unwrap_or_else(|_| "[]".into()))
            .execute(&self.pool)
            .await?;
            Ok(())
        }

        async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
            let row =
                sqlx::query("SELECT id, hash, role, isp, label, created_at, revoked_at, sensors FROM tokens WHERE hash = $1")
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await?;
            row.map(|row| Self::token_row(&row)).transpose()
        }

        async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
            let rows = sqlx::query(
                "SELECT id, hash, role, isp, label, created_at, revoked_at, sensors FROM tokens ORDER BY created_at, id",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(Self::token_row).collect()
        }

        async fn record_addresses(&self, kind: Kind) -> Result<Vec<(Uuid, std::net::IpAddr)>, StoreError> {
            use futures_util::TryStreamExt;
            let mut rows = sqlx::query(Self::ADDRESSES).bind(kind.as_str()).fetch(&self.pool);
            let mut found = Vec::new();
            while let Some(row) = rows.try_next().await? {
                let id: String = row.get(0);
                let ip: String = row.get(1);
                let corrupt = |reason: String| StoreError::Corrupt { what: format!("record {id}"), reason };
                found.push((
                    id.parse().map_err(|e: uuid::Error| corrupt(e.to_string()))?,
                    ip.parse().map_err(|e: std::net::AddrParseError| corrupt(e.to_string()))?,
                ));
            }
            Ok(found)
        }

        async fn botnet_servers(
            &self,
            since: Option<botscope_model::Timestamp>,
        ) -> Result<Vec<(String, std::net::IpAddr, u16)>, StoreError> {
            use futures_util::TryStreamExt;
            let mut select = sqlx::QueryBuilder::new(Self::BOTNET_SERVERS);
            if let Some(since) = since {
                select.push(" AND time >= ").push_bind(Self::time(since));
            }
            select.push(" ORDER BY records.id, server.key");
            let mut rows = select.build().fetch(&self.pool);
            let mut found = Vec::new();
            while let Some(row) = rows.try_next().await? {
                let serial: String = row.get(0);
                let ip: Option<String> = row.get(1);
                let port: Option<i64> = row.get(2);
                let corrupt = |reason: String| StoreError::Corrupt { what: format!("botnet {serial}"), reason };
                let ip = ip.ok_or_else(|| corrupt("a C&C server without an address".into()))?;
                let ip = ip.parse().map_err(|e: std::net::AddrParseError| corrupt(format!("{ip:?}: {e}")))?;
                let port = port
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| corrupt("a C&C server without a port".into()))?;
                found.push((serial, ip, port));
            }
            Ok(found)
        }

        async fn botnet_current_servers(
            &self,
            since: Option<botscope_model::Timestamp>,
        ) -> Result<Vec<crate::BotnetCurrentServer>, StoreError> {
            use futures_util::TryStreamExt;
            let mut select = sqlx::QueryBuilder::new(Self::BOTNET_SERVER_SIGHTINGS);
            if let Some(since) = since {
                select.push(" AND time >= ").push_bind(Self::time(since));
            }
            select.push(" ORDER BY records.id, server.key");
            let mut rows = select.build().fetch(&self.pool);
            let mut found: Vec<crate::BotnetCurrentServer> = Vec::new();
            // The last sighting of the botnet being read, to compare its next server with.
            let mut latest: Option<botscope_model::Timestamp> = None;
            while let Some(row) = rows.try_next().await? {
                let id: String = row.get(0);
                let serial: String = row.get(1);
                let corrupt = |reason: String| StoreError::Corrupt { what: format!("botnet {serial}"), reason };
                let id: Uuid = id.parse().map_err(|e: uuid::Error| corrupt(format!("id {id:?}: {e}")))?;
                if found.last().is_none_or(|botnet| botnet.id != id) {
                    let first_seen: Option<String> = row.get(5);
                    let first_seen = first_seen.ok_or_else(|| corrupt("no first sighting".into()))?;
                    let first_seen = first_seen
                        .parse()
                        .map_err(|e: chrono::ParseError| corrupt(format!("first seen {first_seen:?}: {e}")))?;
                    found.push(crate::BotnetCurrentServer { id, serial: serial.clone(), server: None, first_seen });
                    latest = None;
                }
                let ip: Option<String> = row.get(2);
                let port: Option<i64> = row.get(3);
                let last_seen: Option<String> = row.get(4);
                // No server row: a botnet without servers (the outer join's one empty row).
                let Some(port) = port else { continue };
                let ip = ip.ok_or_else(|| corrupt("a C&C server without an address".into()))?;
                let ip = ip.parse().map_err(|e: std::net::AddrParseError| corrupt(format!("{ip:?}: {e}")))?;
                let port = u16::try_from(port).map_err(|_| corrupt(format!("C&C port {port}")))?;
                let last_seen = last_seen.ok_or_else(|| corrupt("a C&C server without a last sighting".into()))?;
                // The parser the record's own decoding uses, so that both pick the same server.
                let last_seen: botscope_model::Timestamp =
                    last_seen.parse().map_err(|e: chrono::ParseError| corrupt(format!("{last_seen:?}: {e}")))?;
                if latest.is_none_or(|latest| last_seen >= latest) {
                    latest = Some(last_seen);
                    if let Some(botnet) = found.last_mut() {
                        botnet.server = Some((ip, port));
                    }
                }
            }
            Ok(found)
        }

        async fn put_lease(
            &self,
            lease: &crate::Lease,
            bounds: crate::LeaseBounds,
            now_ms: i64,
        ) -> Result<(), StoreError> {
            if bounds.max == 0 || bounds.per_owner == 0 || lease.expires_ms <= now_ms {
                return Ok(());
            }
            let kind = lease.kind.as_str();
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM leases WHERE kind = $1 AND (expires_ms <= $2 OR key = $3)")
                .bind(kind)
                .bind(now_ms)
                .bind(&lease.key)
                .execute(&mut *tx)
                .await?;
            let own: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM leases WHERE kind = $1 AND owner = $2")
                .bind(kind)
                .bind(&lease.owner)
                .fetch_one(&mut *tx)
                .await?;
            let excess = own + 1 - bounds.per_owner.min(i64::MAX as u64) as i64;
            if excess > 0 {
                sqlx::query(
                    "DELETE FROM leases WHERE kind = $1 AND key IN \
                     (SELECT key FROM leases WHERE kind = $1 AND owner = $2 ORDER BY expires_ms, key LIMIT $3)",
                )
                .bind(kind)
                .bind(&lease.owner)
                .bind(excess)
                .execute(&mut *tx)
                .await?;
            }
            let all: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM leases WHERE kind = $1")
                .bind(kind)
                .fetch_one(&mut *tx)
                .await?;
            let excess = all + 1 - bounds.max.min(i64::MAX as u64) as i64;
            if excess > 0 {
                sqlx::query(
                    "DELETE FROM leases WHERE kind = $1 AND key IN \
                     (SELECT key FROM leases WHERE kind = $1 ORDER BY expires_ms, key LIMIT $2)",
                )
                .bind(kind)
                .bind(excess)
                .execute(&mut *tx)
                .await?;
            }
            // Upserted: two replicas putting one key at once must not fail on the second.
            sqlx::query(
                "INSERT INTO leases (kind, key, owner, body, expires_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (kind, key) DO UPDATE SET owner = excluded.owner, body = excluded.body, \
                 expires_ms = excluded.expires_ms",
            )
                .bind(kind)
                .bind(&lease.key)
                .bind(&lease.owner)
                .bind(&lease.body)
                .bind(lease.expires_ms)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn lease(&self, kind: crate::LeaseKind, key: &str, now_ms: i64) -> Result<Option<crate::Lease>, StoreError> {
            let row = sqlx::query(
                "SELECT owner, body, expires_ms FROM leases WHERE kind = $1 AND key = $2 AND expires_ms > $3",
            )
            .bind(kind.as_str())
            .bind(key)
            .bind(now_ms)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.map(|row| crate::Lease {
                kind,
                key: key.to_string(),
                owner: row.get(0),
                body: row.get(1),
                expires_ms: row.get(2),
            }))
        }

        async fn drop_lease(&self, kind: crate::LeaseKind, key: &str) -> Result<bool, StoreError> {
            let dropped = sqlx::query("DELETE FROM leases WHERE kind = $1 AND key = $2")
                .bind(kind.as_str())
                .bind(key)
                .execute(&self.pool)
                .await?
                .rows_affected();
            Ok(dropped > 0)
        }

        async fn count_hit(&self, key: &str, window_ms: i64, now_ms: i64) -> Result<u64, StoreError> {
            let ended = now_ms.saturating_sub(window_ms.max(1));
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "DELETE FROM rate_counts WHERE key IN \
                 (SELECT key FROM rate_counts WHERE window_ms <= $1 LIMIT $2)",
            )
            .bind(ended)
            .bind(crate::STALE_COUNTS_PER_HIT)
            .execute(&mut *tx)
            .await?;
            let hits: i64 = sqlx::query_scalar(
                "INSERT INTO rate_counts (key, window_ms, hits) VALUES ($1, $2, 1) \
                 ON CONFLICT (key) DO UPDATE SET \
                 hits = CASE WHEN rate_counts.window_ms > $3 THEN rate_counts.hits + 1 ELSE 1 END, \
                 window_ms = CASE WHEN rate_counts.window_ms > $3 THEN rate_counts.window_ms ELSE $2 END \
                 RETURNING hits",
            )
            .bind(key)
            .bind(now_ms)
            .bind(ended)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(hits.max(0) as u64)
        }

        async fn prefixes_originated_by(&self, asn: u32) -> Result<Vec<ipnet::IpNet>, StoreError> {
            // The text match only narrows; the origin is parsed to tell 6450 from 64500.
            let rows = sqlx::query("SELECT prefix, origin FROM routed_prefixes WHERE origin LIKE $1")
                .bind(format!("%{asn}%"))
                .fetch_all(&self.pool)
                .await?;
            let mut prefixes = Vec::new();
            for row in &rows {
                let routed = crate::decode_prefix(row.get(0), row.get(1))?;
                if routed.origin.origins.iter().flatten().any(|a| *a == asn) {
                    prefixes.push(routed.prefix);
                }
            }
            prefixes.sort();
            Ok(prefixes)
        }

        async fn prune(&self, kind: Kind, before: chrono::NaiveDate, limit: u32) -> Result<u64, StoreError> {
            let (kind_name, day) = (kind.as_str(), before.to_string());
            // The cut is recorded before anything goes, so that a late write of a pruned day
            // marks nothing (the day keeps the roll-ups counted before).
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO retention (kind, before_day) VALUES ($1, $2) \
                 ON CONFLICT (kind) DO UPDATE SET before_day = excluded.before_day \
                 WHERE excluded.before_day > retention.before_day",
            )
            .bind(kind_name)
            .bind(&day)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM rollup_dirty WHERE kind = $1 AND day < $2")
                .bind(kind_name)
                .bind(&day)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            let dropped = self.drop_whole_months(kind, before).await?;
            let mut tx = self.pool.begin().await?;
            // By (id, time): PostgreSQL's monthly kinds are keyed so. The time bound outside as
            // well as inside, so that PostgreSQL looks for the rows only in the months before
            // the cut (without it, every batch scanned every month: 1.2 s where this is 0.18).
            // Safe: the only interpolation is the backend's constant expression for the day's
            // start.
            let deleted = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM records WHERE kind = $1 AND time < {start} AND (id, time) IN \
                 (SELECT id, time FROM records WHERE kind = $1 AND time < {start} LIMIT $3)",
                start = Self::DAY_START
            )))
            .bind(kind_name)
            .bind(&day)
            .bind(i64::from(limit))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if dropped + deleted > 0 && crate::VERSIONED_KINDS.contains(&kind) {
                sqlx::query(crate::RAISE_VERSION).bind(kind_name).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            // Fewer than `limit` only when the rows left before the cut are all gone: a dropped
            // month counts on top of a full batch.
            Ok(dropped + deleted)
        }

        async fn count_before(&self, kind: Kind, before: chrono::NaiveDate) -> Result<u64, StoreError> {
            // Safe: as in `prune`.
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM records WHERE kind = $1 AND time < {}",
                Self::DAY_START
            )))
            .bind(kind.as_str())
            .bind(before.to_string())
            .fetch_one(&self.pool)
            .await?;
            Ok(count.max(0) as u64)
        }

        async fn dirty_rollups(
            &self,
            after: Option<(chrono::NaiveDate, Kind)>,
            limit: u32,
        ) -> Result<Vec<crate::DirtyDay>, StoreError> {
            let (day, kind) = after.map_or_else(
                || (String::new(), String::new()),
                |(day, kind)| (day.to_string(), kind.as_str().to_string()),
            );
            let rows = sqlx::query(
                // A day before its kind's retention keeps its roll-ups as counted, even if a
                // writer that had not yet seen the prune (or an older replica) marked it.
                "SELECT kind, day, generation FROM rollup_dirty WHERE generation > counted \
                 AND (day > $1 OR (day = $1 AND kind > $2)) \
                 AND NOT EXISTS (SELECT 1 FROM retention \
                     WHERE retention.kind = rollup_dirty.kind AND retention.before_day > rollup_dirty.day) \
                 ORDER BY day, kind LIMIT $3",
            )
            .bind(day)
            .bind(kind)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            // A mark this build cannot read (a kind from a newer one) is left for that build.
            Ok(rows
                .iter()
                .filter_map(|row| {
                    Some(crate::DirtyDay {
                        kind: row.get::<String, _>(0).parse().ok()?,
                        day: crate::parse_day(row.get(1)).ok()?,
                        generation: row.get(2),
                    })
                })
                .collect())
        }

        async fn replace_rollups(
            &self,
            day: &crate::DirtyDay,
            rows: &[crate::RollupRow],
            servers: &[crate::ServerRollup],
        ) -> Result<bool, StoreError> {
            let (kind, date) = (day.kind.as_str(), day.day.to_string());
            let mut tx = self.pool.begin().await?;
            // First claim the generation: only the latest, not yet counted, is written. A write
            // since (a higher generation) or another refresher that counted it makes this one
            // stale, and it leaves without writing.
            let claimed = sqlx::query(
                "UPDATE rollup_dirty SET counted = $3 WHERE kind = $1 AND day = $2 AND generation = $3 AND counted < $3 \
                 AND NOT EXISTS (SELECT 1 FROM retention WHERE retention.kind = $1 AND retention.before_day > $2)",
            )
            .bind(kind)
            .bind(&date)
            .bind(day.generation)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query("DELETE FROM rollups WHERE kind = $1 AND day = $2")
                .bind(kind)
                .bind(&date)
                .execute(&mut *tx)
                .await?;
            for row in rows {
                sqlx::query(
                    "INSERT INTO rollups (kind, metric, day, dim, count, hosts) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(kind)
                .bind(&row.metric)
                .bind(&date)
                .bind(&row.dim)
                .bind(row.count.min(i64::MAX as u64) as i64)
                .bind(row.hosts.as_deref())
                .execute(&mut *tx)
                .await?;
            }
            if day.kind == Kind::Cnc {
                sqlx::query("DELETE FROM cnc_servers WHERE day = $1").bind(&date).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO cnc_server_days (day, generation) VALUES ($1, $2) \
                     ON CONFLICT (day) DO UPDATE SET generation = excluded.generation",
                )
                .bind(&date)
                .bind(day.generation)
                .execute(&mut *tx)
                .await?;
                // Many rows per statement: today is counted again on every refresh under ingest.
                for chunk in servers.chunks(crate::SERVER_ROWS_PER_INSERT) {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO cnc_servers (day, ip, port, protocol, sensor, reports, first_seen, last_seen, \
                         best_score, family) ",
                    );
                    insert.push_values(chunk, |mut row, server| {
                        row.push_bind(date.clone())
                            .push_bind(server.ip.to_string())
                            .push_bind(i32::from(server.port))
                            .push_bind(server.protocol.clone())
                            .push_bind(server.sensor.clone().unwrap_or_default())
                            .push_bind(server.reports.min(i64::MAX as u64) as i64)
                            .push_bind(server.first_seen)
                            .push_bind(server.last_seen)
                            .push_bind(server.best_score)
                            .push_bind(server.family.clone());
                    });
                    insert.build().execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok(true)
        }

        async fn mark_servers_uncounted(&self) -> Result<u64, StoreError> {
            // Counted (not waiting) at a generation its servers were not counted at. Pruned days
            // stay as they are: their reports are gone.
            Ok(sqlx::query(
                "UPDATE rollup_dirty SET generation = generation + 1 \
                 WHERE kind = 'cnc' AND counted = generation AND counted > 0 \
                 AND NOT EXISTS (SELECT 1 FROM cnc_server_days \
                     WHERE cnc_server_days.day = rollup_dirty.day AND cnc_server_days.generation = rollup_dirty.counted) \
                 AND NOT EXISTS (SELECT 1 FROM retention \
                     WHERE retention.kind = 'cnc' AND retention.before_day > rollup_dirty.day)",
            )
            .execute(&self.pool)
            .await?
            .rows_affected())
        }

        async fn server_rollups(
            &self,
            from: Option<chrono::NaiveDate>,
            to: Option<chrono::NaiveDate>,
        ) -> Result<Vec<crate::ServerRollup>, StoreError> {
            // The sum is cast back: PostgreSQL sums BIGINT as NUMERIC. The family is the greatest
            // byte by byte, as a filtered page picks it from the reports. Safe: the only
            // interpolation is the backend's constant collation clause.
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT ip, port, protocol, sensor, CAST(SUM(reports) AS BIGINT), MIN(first_seen), MAX(last_seen), \
                 MAX(best_score), MAX(family {}) FROM cnc_servers WHERE day >= $1 AND day <= $2 \
                 GROUP BY ip, port, protocol, sensor",
                Self::BYTEWISE
            )))
            .bind(from.map_or_else(|| "0000-00-00".to_string(), |d| d.to_string()))
            .bind(to.map_or_else(|| "9999-99-99".to_string(), |d| d.to_string()))
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let ip: String = row.get(0);
                    let sensor: String = row.get(3);
                    Ok(crate::ServerRollup {
                        ip: ip.parse().map_err(|_| StoreError::Corrupt {
                            what: "a C&C server roll-up".into(),
                            reason: format!("{ip:?} is not an address"),
                        })?,
                        port: u16::try_from(row.get::<i32, _>(1)).map_err(|_| StoreError::Corrupt {
                            what: "a C&C server roll-up".into(),
                            reason: format!("port {} of {ip} is out of range", row.get::<i32, _>(1)),
                        })?,
                        protocol: row.get(2),
                        sensor: (!sensor.is_empty()).then_some(sensor),
                        reports: row.get::<i64, _>(4).max(0) as u64,
                        first_seen: row.get(5),
                        last_seen: row.get(6),
                        best_score: row.get(7),
                        family: row.get(8),
                    })
                })
                .collect()
        }

        async fn record_version(&self, kind: Kind) -> Result<i64, StoreError> {
            let generation: Option<i64> = sqlx::query_scalar("SELECT generation FROM record_versions WHERE kind = $1")
                .bind(kind.as_str())
                .fetch_optional(&self.pool)
                .await?;
            Ok(generation.unwrap_or(0))
        }

        async fn server_rollup_version(
            &self,
            from: Option<chrono::NaiveDate>,
            to: Option<chrono::NaiveDate>,
        ) -> Result<(u64, i64), StoreError> {
            let (days, generations): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), CAST(COALESCE(SUM(generation), 0) AS BIGINT) FROM cnc_server_days \
                 WHERE day >= $1 AND day <= $2",
            )
            .bind(from.map_or_else(|| "0000-00-00".to_string(), |d| d.to_string()))
            .bind(to.map_or_else(|| "9999-99-99".to_string(), |d| d.to_string()))
            .fetch_one(&self.pool)
            .await?;
            Ok((days.max(0) as u64, generations))
        }

        async fn rollups(
            &self,
            kind: Kind,
            metric: &str,
            from: Option<chrono::NaiveDate>,
            to: Option<chrono::NaiveDate>,
            dims: &crate::Dims,
        ) -> Result<Vec<(chrono::NaiveDate, crate::RollupRow)>, StoreError> {
            let mut select = sqlx::QueryBuilder::new("SELECT day, dim, count, hosts FROM rollups WHERE kind = ");
            select
                .push_bind(kind.as_str())
                .push(" AND metric = ")
                .push_bind(metric.to_string())
                .push(" AND day >= ")
                .push_bind(from.map_or_else(|| "0000-00-00".to_string(), |d| d.to_string()))
                .push(" AND day <= ")
                .push_bind(to.map_or_else(|| "9999-99-99".to_string(), |d| d.to_string()));
            match dims {
                crate::Dims::All => {}
                crate::Dims::Exactly(names) if names.is_empty() => {
                    select.push(" AND 1 = 0");
                }
                crate::Dims::Exactly(names) => {
                    select.push(" AND dim IN (");
                    let mut list = select.separated(", ");
                    for name in names {
                        list.push_bind(name.clone());
                    }
                    list.push_unseparated(")");
                }
                crate::Dims::Within(part) if part.is_empty() => {
                    select.push(" AND dim NOT LIKE '%/%'");
                }
                crate::Dims::Within(part) => {
                    let under = format!("{part}/");
                    select
                        .push(" AND substr(dim, 1, ")
                        .push_bind(i32::try_from(under.chars().count()).unwrap_or(i32::MAX))
                        .push(") = ")
                        .push_bind(under);
                }
            }
            // Days are fixed-width text, so text order is day order on both backends.
            select.push(" ORDER BY day, dim");
            let rows = select.build().fetch_all(&self.pool).await?;
            rows.iter()
                .map(|row| {
                    Ok((
                        crate::parse_day(row.get(0))?,
                        crate::RollupRow {
                            metric: metric.to_string(),
                            dim: row.get(1),
                            count: row.get::<i64, _>(2).max(0) as u64,
                            hosts: row.get(3),
                        },
                    ))
                })
                .collect()
        }

        async fn routed_prefixes(&self) -> Result<Vec<RoutedPrefix>, StoreError> {
            use futures_util::TryStreamExt;
            // Streamed: a full table is a million rows, and holding them all as rows would triple memory.
            let mut rows = sqlx::query("SELECT prefix, origin FROM routed_prefixes").fetch(&self.pool);
            let mut prefixes = Vec::new();
            while let Some(row) = rows.try_next().await? {
                prefixes.push(crate::decode_prefix(row.get(0), row.get(1))?);
            }
            Ok(prefixes)
        }
    };
}
pub(crate) use same_on_every_backend;

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($store) => $call,
            AnyStore::Postgres($store) => $call,
        }
    };
}

impl Store for AnyStore {
    fn describe(&self) -> String {
        dispatch!(self, s => s.describe())
    }
    async fn put_records(&self, records: &[Record]) -> Result<PutSummary, StoreError> {
        dispatch!(self, s => s.put_records(records).await)
    }
    async fn upsert_records(&self, records: &[Record]) -> Result<u64, StoreError> {
        dispatch!(self, s => s.upsert_records(records).await)
    }
    async fn count_records(&self, kind: Option<Kind>) -> Result<u64, StoreError> {
        dispatch!(self, s => s.count_records(kind).await)
    }
    async fn count_since(&self, kind: Kind, since: Option<Timestamp>, status: Option<&str>) -> Result<u64, StoreError> {
        dispatch!(self, s => s.count_since(kind, since, status).await)
    }
    async fn record_addresses(&self, kind: Kind) -> Result<Vec<(Uuid, std::net::IpAddr)>, StoreError> {
        dispatch!(self, s => s.record_addresses(kind).await)
    }
    async fn botnet_servers(
        &self,
        since: Option<Timestamp>,
    ) -> Result<Vec<(String, std::net::IpAddr, u16)>, StoreError> {
        dispatch!(self, s => s.botnet_servers(since).await)
    }
    async fn botnet_current_servers(&self, since: Option<Timestamp>) -> Result<Vec<BotnetCurrentServer>, StoreError> {
        dispatch!(self, s => s.botnet_current_servers(since).await)
    }
    async fn count_botnets(&self, span: BotnetSpan) -> Result<u64, StoreError> {
        dispatch!(self, s => s.count_botnets(span).await)
    }
    async fn botnets_page(
        &self,
        span: BotnetSpan,
        column: BotnetColumn,
        descending: bool,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError> {
        dispatch!(self, s => s.botnets_page(span, column, descending, offset, limit).await)
    }
    async fn record(&self, id: Uuid) -> Result<Option<Record>, StoreError> {
        dispatch!(self, s => s.record(id).await)
    }
    async fn records_by_id(&self, ids: &[Uuid]) -> Result<Vec<Record>, StoreError> {
        dispatch!(self, s => s.records_by_id(ids).await)
    }
    async fn records(&self, query: &RecordQuery) -> Result<Vec<Record>, StoreError> {
        dispatch!(self, s => s.records(query).await)
    }
    async fn replace_routed_prefixes(&self, prefixes: &[RoutedPrefix], source: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.replace_routed_prefixes(prefixes, source).await)
    }
    async fn routed_prefixes(&self) -> Result<Vec<RoutedPrefix>, StoreError> {
        dispatch!(self, s => s.routed_prefixes().await)
    }
    async fn routing_snapshot(&self) -> Result<Option<RoutingSnapshot>, StoreError> {
        dispatch!(self, s => s.routing_snapshot().await)
    }
    async fn replace_isps(&self, isps: &[Isp]) -> Result<(), StoreError> {
        dispatch!(self, s => s.replace_isps(isps).await)
    }
    async fn isps(&self) -> Result<Vec<Isp>, StoreError> {
        dispatch!(self, s => s.isps().await)
    }
    async fn put_token(&self, token: &TokenRow) -> Result<(), StoreError> {
        dispatch!(self, s => s.put_token(token).await)
    }
    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        dispatch!(self, s => s.token_by_hash(hash).await)
    }
    async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        dispatch!(self, s => s.tokens().await)
    }
    async fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.revoke_token(id).await)
    }
    async fn schema(&self) -> Result<Schema, StoreError> {
        dispatch!(self, s => s.schema().await)
    }
    async fn put_lease(&self, lease: &Lease, bounds: LeaseBounds, now_ms: i64) -> Result<(), StoreError> {
        dispatch!(self, s => s.put_lease(lease, bounds, now_ms).await)
    }
    async fn lease(&self, kind: LeaseKind, key: &str, now_ms: i64) -> Result<Option<Lease>, StoreError> {
        dispatch!(self, s => s.lease(kind, key, now_ms).await)
    }
    async fn drop_lease(&self, kind: LeaseKind, key: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.drop_lease(kind, key).await)
    }
    async fn count_hit(&self, key: &str, window_ms: i64, now_ms: i64) -> Result<u64, StoreError> {
        dispatch!(self, s => s.count_hit(key, window_ms, now_ms).await)
    }
    async fn latest_time(&self, kind: Kind) -> Result<Option<Timestamp>, StoreError> {
        dispatch!(self, s => s.latest_time(kind).await)
    }
    async fn prefixes_originated_by(&self, asn: u32) -> Result<Vec<ipnet::IpNet>, StoreError> {
        dispatch!(self, s => s.prefixes_originated_by(asn).await)
    }
    async fn dirty_rollups(&self, after: Option<(NaiveDate, Kind)>, limit: u32) -> Result<Vec<DirtyDay>, StoreError> {
        dispatch!(self, s => s.dirty_rollups(after, limit).await)
    }
    async fn replace_rollups(
        &self,
        day: &DirtyDay,
        rows: &[RollupRow],
        servers: &[ServerRollup],
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.replace_rollups(day, rows, servers).await)
    }
    async fn record_version(&self, kind: Kind) -> Result<i64, StoreError> {
        dispatch!(self, s => s.record_version(kind).await)
    }
    async fn server_rollups(
        &self,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Vec<ServerRollup>, StoreError> {
        dispatch!(self, s => s.server_rollups(from, to).await)
    }
    async fn server_rollup_version(
        &self,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<(u64, i64), StoreError> {
        dispatch!(self, s => s.server_rollup_version(from, to).await)
    }
    async fn mark_servers_uncounted(&self) -> Result<u64, StoreError> {
        dispatch!(self, s => s.mark_servers_uncounted().await)
    }
    async fn prune(&self, kind: Kind, before: NaiveDate, limit: u32) -> Result<u64, StoreError> {
        dispatch!(self, s => s.prune(kind, before, limit).await)
    }
    async fn count_before(&self, kind: Kind, before: NaiveDate) -> Result<u64, StoreError> {
        dispatch!(self, s => s.count_before(kind, before).await)
    }
    async fn rollups(
        &self,
        kind: Kind,
        metric: &str,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        dims: &Dims,
    ) -> Result<Vec<(NaiveDate, RollupRow)>, StoreError> {
        dispatch!(self, s => s.rollups(kind, metric, from, to, dims).await)
    }
}

/// Adds the typed-column filters of `query` (the columns of migration 0005, the same on both
/// backends) to a `SELECT ... WHERE` being built.
///
/// `case_of_outcome` is the backend's expression for an outcome's case, as its index has it;
/// `address` the indexed address column and the cast its values need (`ip` as text on SQLite,
/// `addr` as `inet` on PostgreSQL).
fn push_typed_filters<DB>(
    select: &mut sqlx::QueryBuilder<DB>,
    query: &RecordQuery,
    case_of_outcome: &str,
    address: (&str, &str),
) where
    DB: sqlx::Database,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    if let Some(isp) = &query.isp {
        // A host in a prefix several ISPs share names them all, joined by commas: it is each one's.
        select.push(" AND (isp = ").push_bind(isp.clone());
        if isp.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
            select.push(" OR (isp LIKE '%,%' AND ',' || isp || ',' LIKE ").push_bind(format!("%,{isp},%")).push(")");
        }
        select.push(")");
    }
    let texts = [
        ("serial", &query.serial),
        ("status", &query.status),
        ("sensor", &query.sensor),
        ("collection", &query.collection),
    ];
    for (column, value) in texts {
        if let Some(value) = value {
            select.push(format_args!(" AND {column} = ")).push_bind(value.clone());
        }
    }
    if let Some(port) = query.port {
        select.push(" AND port = ").push_bind(i64::from(port));
    }
    if let Some(cases) = &query.cases_any {
        // The literal kind lets the planner prove the partial index applies.
        select.push(" AND kind = 'outcome'");
        if cases.is_empty() {
            select.push(" AND 1 = 0");
        } else {
            select.push(format_args!(" AND {case_of_outcome} IN ("));
            let mut list = select.separated(", ");
            for case in cases {
                list.push_bind(case.to_string());
            }
            list.push_unseparated(")");
        }
    }
    if let Some(addresses) = &query.ip_any {
        let (column, cast) = address;
        if addresses.is_empty() {
            select.push(" AND 1 = 0");
        } else {
            select.push(format_args!(" AND {column} IN ("));
            let mut list = select.separated(", ");
            for ip in addresses {
                list.push_bind(ip.to_string());
                list.push_unseparated(cast);
            }
            list.push_unseparated(")");
        }
    }
}

/// Every record of one kind about any of `addresses`, through the address index, in chunks.
pub async fn records_about(
    store: &impl Store,
    kind: Kind,
    addresses: &std::collections::BTreeSet<std::net::IpAddr>,
) -> Result<Vec<Record>, StoreError> {
    let query = RecordQuery { kind: Some(kind), ..Default::default() };
    records_about_within(store, query, addresses).await
}

/// Every record `query` finds about any of `addresses` (its other filters, such as kind and time,
/// kept), through the address index, in chunks.
pub async fn records_about_within(
    store: &impl Store,
    query: RecordQuery,
    addresses: &std::collections::BTreeSet<std::net::IpAddr>,
) -> Result<Vec<Record>, StoreError> {
    let addresses: Vec<std::net::IpAddr> = addresses.iter().copied().collect();
    in_chunks(store, &addresses, |chunk| RecordQuery { ip_any: Some(chunk), ..query.clone() }).await
}

/// Every outcome of any of `cases`, through the outcomes' case index, in chunks.
pub async fn outcomes_of(store: &impl Store, cases: &[Uuid]) -> Result<Vec<Record>, StoreError> {
    in_chunks(store, cases, |chunk| RecordQuery {
        kind: Some(Kind::Outcome),
        cases_any: Some(chunk),
        ..Default::default()
    })
    .await
}

/// Every record of the queries `query_of` makes for `items` a list of [`MAX_ADDRESSES_ANY`] at a time.
async fn in_chunks<T: Clone>(
    store: &impl Store,
    items: &[T],
    query_of: impl Fn(Vec<T>) -> RecordQuery,
) -> Result<Vec<Record>, StoreError> {
    let mut all = Vec::new();
    for chunk in items.chunks(MAX_ADDRESSES_ANY) {
        all.extend(all_records(store, query_of(chunk.to_vec())).await?);
    }
    Ok(all)
}

/// Every record of a query, page by page (the query's `after` and `limit` are managed here).
pub async fn all_records(store: &impl Store, mut query: RecordQuery) -> Result<Vec<Record>, StoreError> {
    query.limit = 10_000;
    query.after = None;
    let mut all = Vec::new();
    loop {
        let page = store.records(&query).await?;
        let Some(last) = page.last().and_then(Record::id) else { break };
        let full = page.len() == query.limit as usize;
        query.after = Some(last);
        all.extend(page);
        if !full {
            break;
        }
    }
    Ok(all)
}

/// Every stored record of one kind, as its payload type: `all_of::<Botnet>(&store)`.
pub async fn all_of<T: botscope_model::Payload>(store: &impl Store) -> Result<Vec<T>, StoreError> {
    let query = RecordQuery { kind: Some(T::KIND), ..Default::default() };
    Ok(all_records(store, query).await?.into_iter().filter_map(T::from_record).collect())
}

/// Reads a stored JSON body back into a record; a body that no longer parses is corruption.
fn decode_record(id: &str, body: &str) -> Result<Record, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt { what: format!("record {id}"), reason: e.to_string() })
}

fn decode_isp(handle: &str, body: &str) -> Result<Isp, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt { what: format!("isp {handle}"), reason: e.to_string() })
}

fn decode_prefix(prefix: &str, origin: &str) -> Result<RoutedPrefix, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { what: format!("routed prefix {prefix}"), reason };
    Ok(RoutedPrefix {
        prefix: prefix.parse().map_err(|e: ipnet::AddrParseError| corrupt(e.to_string()))?,
        origin: origin.parse().map_err(|e: botscope_model::OriginParseError| corrupt(e.to_string()))?,
    })
}

/// One record per id of a batch, as the database should take them one after another: with
/// `replace` the last wins; otherwise the first, except that a later revision of a C&C report
/// wins over an earlier one. PostgreSQL refuses a statement that
/// would update one row twice, so a batch never holds an id twice.
fn distinct_by_id(records: &[Record], replace: bool) -> Result<Vec<&Record>, StoreError> {
    let mut at: std::collections::HashMap<Uuid, usize> = std::collections::HashMap::with_capacity(records.len());
    let mut kept: Vec<&Record> = Vec::with_capacity(records.len());
    for record in records {
        let id = require_id(record)?;
        match at.get(&id) {
            None => {
                at.insert(id, kept.len());
                kept.push(record);
            }
            Some(&slot) => {
                let newer = match (kept[slot], record) {
                    _ if replace => true,
                    (Record::Cnc(old), Record::Cnc(new)) => new.revision_order() > old.revision_order(),
                    _ => false,
                };
                if newer {
                    kept[slot] = record;
                }
            }
        }
    }
    // In id order, so that batches committing at once take their rows' locks in one order: two
    // holding what the other waits for would be a deadlock.
    let mut by_id: Vec<(Uuid, &Record)> = at.into_iter().map(|(id, slot)| (id, kept[slot])).collect();
    by_id.sort_unstable_by_key(|(id, _)| *id);
    Ok(by_id.into_iter().map(|(_, record)| record).collect())
}

/// ISP records in a batch, last one per handle winning, as the registry should see them.
fn latest_isps(records: &[Record]) -> Vec<&Isp> {
    let mut latest: Vec<&Isp> = Vec::new();
    for record in records {
        if let Record::Isp(isp) = record {
            match latest.iter_mut().find(|seen| seen.handle == isp.handle) {
                Some(seen) => *seen = isp,
                None => latest.push(isp),
            }
        }
    }
    latest
}

/// The snapshot's prefixes, each once: a prefix named twice keeps its last origin, as a reader of
/// the file top to bottom would conclude.
fn last_per_prefix(prefixes: &[RoutedPrefix]) -> Vec<&RoutedPrefix> {
    let mut last = std::collections::HashMap::with_capacity(prefixes.len());
    for (at, routed) in prefixes.iter().enumerate() {
        last.insert(routed.prefix, at);
    }
    prefixes.iter().enumerate().filter(|(at, routed)| last[&routed.prefix] == *at).map(|(_, routed)| routed).collect()
}

/// Reads the `sensors` column (a JSON array of names).
fn decode_sensors(id: &str, text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt { what: format!("token {id}"), reason: e.to_string() })
}

fn decode_role(id: &str, text: &str) -> Result<botscope_model::Role, StoreError> {
    text.parse().map_err(|reason| StoreError::Corrupt { what: format!("token {id}"), reason })
}

fn require_id(record: &Record) -> Result<Uuid, StoreError> {
    record.id().ok_or(StoreError::MissingId { kind: record.kind() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 16 bytes of each released migration's checksum (sqlx's SHA-384 of the file), per
    /// backend. A store that applied a migration refuses to open under a build whose file for it
    /// differs, so a released migration is never edited: a change is a new migration.
    const SQLITE: &[(i64, &str)] = &[
        (1, "48bc1232352aa4c8f818f2baa4de6f93"),
        (2, "ff6e3dee5c27aabb04ddb6cf699e3475"),
        (3, "39c3d945cb0b11bcd74ac26009a8368c"),
        (4, "22b8c7e6d8093ab9d5659d5b5c77358d"),
        (5, "fa014780ec6ca962f737ec5f77658b96"),
        (6, "d2f7dfd260428fa356be8978a12387ec"),
        (7, "8fda9567c6793f22b95d6a625e889d1b"),
        (8, "e4dbaead30010050e2235f2cd97b6a7f"),
        (9, "41df3c52197bda3b3de7d4e8f9da6aba"),
        (10, "23a33be31082ebae0cc0a32b1f7ada46"),
        (11, "a99f84c975ca2c143c0625ef1a82a461"),
        (12, "fd3e3f3693d50099148ef64ef1bacce3"),
        (13, "cec0a5ee6c560717a1afd392ba184aeb"),
        (14, "c291df9783fe2493eec6bc1f3917647d"),
    ];
    const POSTGRES: &[(i64, &str)] = &[
        (1, "aa40bcf0564536f0770f65f368608915"),
        (2, "b310f307d15d202cc47bbc2f7582129e"),
        (3, "39c3d945cb0b11bcd74ac26009a8368c"),
        (4, "22b8c7e6d8093ab9d5659d5b5c77358d"),
        (5, "bb6b41daab450e33f0107c17fe36da4f"),
        (6, "c5751f44da9fbf1b24ba645b93fb4ad2"),
        (7, "8fda9567c6793f22b95d6a625e889d1b"),
        (8, "c4d09ab91fb28bc6ccf3566979a68462"),
        (9, "41df3c52197bda3b3de7d4e8f9da6aba"),
        (10, "4060382809dcd1b480e95838f1e765b2"),
        (11, "a299498d6299958a04457f7b60a88af9"),
        (12, "afad420354095589028f0abedc2e54d3"),
        (13, "5f5b6bfb3ba4879a2512e0403de43dd5"),
        (14, "c291df9783fe2493eec6bc1f3917647d"),
    ];

    fn short(checksum: &[u8]) -> String {
        checksum.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn released_migrations_are_unchanged() {
        for (name, migrator, pinned) in
            [("sqlite", &*sqlite::MIGRATOR, SQLITE), ("postgres", &*postgres::MIGRATOR, POSTGRES)]
        {
            let carried: Vec<(i64, String)> = migrator.iter().map(|m| (m.version, short(&m.checksum))).collect();

            for (version, checksum) in pinned {
                let found = carried.iter().find(|(v, _)| v == version);
                assert_eq!(
                    found.map(|(_, c)| c.as_str()),
                    Some(*checksum),
                    "{name} migration {version:04} was released and has changed (or gone): add a new migration instead"
                );
            }
            // Every migration but the newest is pinned: a new one is pinned when the next is added.
            let newest = carried.iter().map(|(v, _)| *v).max().unwrap_or(0);
            for (version, checksum) in &carried {
                assert!(
                    *version == newest || pinned.iter().any(|(v, _)| v == version),
                    "{name} migration {version:04} is not pinned here: add ({version}, \"{checksum}\")"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_migration_applied_from_another_file_is_reported_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db"), 1).await.unwrap();
        assert!(store.migrations().await.unwrap().iter().all(|m| m.applied && !m.changed));
        sqlx::query("UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 3")
            .execute(&store.pool)
            .await
            .unwrap();
        let changed: Vec<i64> =
            store.migrations().await.unwrap().iter().filter(|m| m.changed).map(|m| m.version).collect();
        assert_eq!(changed, vec![3]);
        // Migrating (what opening does) refuses it rather than run on a schema it cannot vouch for.
        let refused = SqliteStore::open(&dir.path().join("s.db"), 1).await.unwrap_err();
        assert!(refused.to_string().contains("migrat"), "{refused}");
    }
}
