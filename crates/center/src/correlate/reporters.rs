//! Who reported a C&C server, counted by token rather than by name.
//!
//! Independent reporters raise a botnet's confidence, so what counts as one reporter must be
//! something a sender cannot multiply: a token. Every sensor name a token holds (its label and the
//! names an admin allowed it) stands for that token, under the token's label; a feed entry whose
//! source is a token's name is the same reporter as that token's C&C reports. Names no token holds
//! are records the operator loaded locally (`botscope ingest`, `feeds import`) and count as named.

use std::collections::HashMap;

use botscope_store::{Store, StoreError, TokenRow};

/// Sensor names mapped to the reporter (token label) they stand for.
#[derive(Debug, Clone, Default)]
pub struct Reporters {
    canonical: HashMap<String, String>,
}

impl Reporters {
    /// From the tokens a store holds, revoked ones included (their records stay).
    pub async fn load(store: &impl Store) -> Result<Reporters, StoreError> {
        Ok(Reporters::from_tokens(&store.tokens().await?))
    }

    /// From token rows.
    pub fn from_tokens(tokens: &[TokenRow]) -> Reporters {
        let mut canonical = HashMap::new();
        for row in tokens.iter().filter(|row| row.role.writes_records()) {
            for name in std::iter::once(&row.label).chain(row.sensors.iter()) {
                // Names are unique among live tokens; of a revoked and a live holder the live one
                // (made later) wins, which is the one writing now.
                let replace = row.revoked_at.is_none() || !canonical.contains_key(name);
                if replace {
                    canonical.insert(name.clone(), row.label.clone());
                }
            }
        }
        Reporters { canonical }
    }

    /// The reporter behind a C&C report's `sensor`.
    pub fn of_sensor(&self, sensor: Option<&str>) -> String {
        match sensor {
            Some(name) => self.canonical.get(name).cloned().unwrap_or_else(|| name.to_string()),
            None => "unnamed".into(),
        }
    }

    /// The reporter behind a feed's `source`: the token it names, else the feed itself.
    pub fn of_feed(&self, source: &str) -> String {
        self.canonical.get(source).cloned().unwrap_or_else(|| format!("feed:{source}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, role: &str, label: &str, sensors: &[&str], revoked: bool) -> TokenRow {
        TokenRow {
            id: id.into(),
            hash: format!("h-{id}"),
            role: role.parse().unwrap(),
            isp: None,
            label: label.into(),
            sensors: sensors.iter().map(|s| s.to_string()).collect(),
            created_at: "2026-11-01T00:00:00Z".parse().unwrap(),
            revoked_at: revoked.then(|| "2026-11-02T00:00:00Z".parse().unwrap()),
        }
    }

    #[test]
    fn every_name_of_a_token_is_one_reporter() {
        let reporters = Reporters::from_tokens(&[
            row("t1", "sensor", "isp-hikari", &["isp-hikari-2", "isp-hikari-3"], false),
            row("t2", "sensor", "isp-sakura", &[], false),
            row("t3", "admin", "analyst", &[], false),
        ]);
        let names: std::collections::BTreeSet<String> = ["isp-hikari", "isp-hikari-2", "isp-hikari-3"]
            .iter()
            .map(|n| reporters.of_sensor(Some(n)))
            .chain([reporters.of_feed("isp-hikari-2")])
            .collect();
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["isp-hikari"]);
        assert_eq!(reporters.of_sensor(Some("isp-sakura")), "isp-sakura");
        assert_eq!(reporters.of_sensor(Some("analyst")), "analyst", "admins write no reports under a name");
        assert_eq!(reporters.of_feed("threatfox"), "feed:threatfox");
        assert_eq!(reporters.of_sensor(None), "unnamed");
    }

    #[test]
    fn a_revoked_tokens_names_still_stand_for_it_until_reissued() {
        let old = row("t1", "sensor", "isp-a", &["isp-a2"], true);
        assert_eq!(Reporters::from_tokens(std::slice::from_ref(&old)).of_sensor(Some("isp-a2")), "isp-a");
        let reissued = row("t2", "sensor", "isp-a2", &[], false);
        assert_eq!(Reporters::from_tokens(&[old, reissued]).of_sensor(Some("isp-a2")), "isp-a2");
    }
}
