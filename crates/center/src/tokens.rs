//! API tokens: who may call the centre, and as what.
//!
//! A token is `bst_` and 43 characters of URL-safe randomness (256 bits). The store keeps only its
//! SHA-256, so a copy of the database grants nothing; the token is shown once, when made.

use botscope_store::TokenRow;
use ring::rand::SecureRandom;

pub use botscope_model::Role;

/// Who a request is, once its token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's public id.
    pub token_id: String,
    /// Its role.
    pub role: Role,
    /// The ISP of an `isp` token.
    pub isp: Option<String>,
    /// The token's label (sensor name, normally).
    pub label: String,
    /// Further sensor names the admin allowed the token (beyond its label).
    pub sensors: Vec<String>,
}

impl Caller {
    /// Reads a stored token row; `None` if revoked.
    pub fn from_row(row: &TokenRow) -> Option<Caller> {
        if row.revoked_at.is_some() {
            return None;
        }
        Some(Caller {
            token_id: row.id.clone(),
            role: row.role,
            isp: row.isp.clone(),
            label: row.label.clone(),
            sensors: row.sensors.clone(),
        })
    }

    /// Every sensor name this caller may write records under: its label, then its allowlist.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.label.as_str()).chain(self.sensors.iter().map(String::as_str))
    }

    /// Whether the caller may write records under `name`.
    pub fn may_name(&self, name: &str) -> bool {
        self.names().any(|own| own == name)
    }
}

/// Sensor names a token may hold at most (its label and allowlist together): the names key
/// figures, so a token cannot make a crowd of reporters.
pub const MAX_SENSOR_NAMES: usize = 16;

/// The names a sensor or surveyor token would hold that another live token already holds: records
/// are told apart by sensor name, so two tokens sharing one could write as each other.
pub fn names_taken<'a>(existing: &'a [TokenRow], names: &[&str]) -> Vec<&'a str> {
    let mut taken: Vec<&str> = Vec::new();
    for row in existing.iter().filter(|row| row.revoked_at.is_none() && row.role.writes_records()) {
        for held in std::iter::once(&row.label).chain(row.sensors.iter()) {
            if names.contains(&held.as_str()) && !taken.contains(&held.as_str()) {
                taken.push(held);
            }
        }
    }
    taken
}

/// Hex SHA-256 of a token, as the store keeps it.
pub fn hash(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn random_text(bytes: usize) -> Result<String, ring::error::Unspecified> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut raw = vec![0u8; bytes];
    ring::rand::SystemRandom::new().fill(&mut raw)?;
    // 6 bits per character from each byte: 256 bits of randomness need 43 characters of 64.
    Ok(raw.iter().map(|b| ALPHABET[(b & 63) as usize] as char).collect())
}

/// A new token and the row to store for it. `sensors` are further names a sensor or surveyor
/// token may write records under; such a token's label must itself be a sensor name.
pub fn issue(
    role: Role,
    isp: Option<&str>,
    label: &str,
    sensors: &[String],
    now: botscope_model::Timestamp,
) -> Result<(String, TokenRow), crate::CenterError> {
    if role == Role::Isp && isp.is_none() {
        return Err(crate::CenterError::Invalid("an isp token needs --isp HANDLE".into()));
    }
    if role != Role::Isp && isp.is_some() {
        return Err(crate::CenterError::Invalid(format!("--isp only goes with --role isp, not {role}")));
    }
    if let Some(handle) = isp
        && !botscope_model::is_valid_handle(handle)
    {
        return Err(crate::CenterError::Invalid(format!("{handle:?} is not a valid ISP handle")));
    }
    if matches!(role, Role::Sensor | Role::Surveyor) {
        if let Some(bad) = std::iter::once(label)
            .chain(sensors.iter().map(String::as_str))
            .find(|name| !botscope_model::is_valid_sensor_name(name))
        {
            return Err(crate::CenterError::Invalid(format!(
                "{bad:?} is not a sensor name (1-64 of letters, digits, '-', '_', '.', starting with a letter or digit)"
            )));
        }
        if sensors.len() + 1 > MAX_SENSOR_NAMES {
            return Err(crate::CenterError::Invalid(format!("a token holds at most {MAX_SENSOR_NAMES} sensor names")));
        }
    } else if !sensors.is_empty() {
        return Err(crate::CenterError::Invalid(format!(
            "--sensor only goes with --role sensor or surveyor, not {role}"
        )));
    }
    let randomness = |n| random_text(n).map_err(|_| crate::CenterError::Invalid("no system randomness".into()));
    let token = format!("bst_{}", randomness(43)?);
    let row = TokenRow {
        id: format!("tok_{}", randomness(10)?),
        hash: hash(&token),
        role,
        isp: isp.map(String::from),
        label: label.into(),
        sensors: sensors.to_vec(),
        created_at: now,
        revoked_at: None,
    };
    Ok((token, row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_stored_by_hash_and_roles_checked() {
        let now = "2026-11-25T00:00:00Z".parse().unwrap();
        let (a, row) = issue(Role::Sensor, None, "survey-1", &[], now).unwrap();
        let (b, _) = issue(Role::Sensor, None, "survey-1", &[], now).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 43);
        assert_eq!(row.hash, hash(&a));
        assert!(!row.hash.contains(&a[4..]));
        assert_eq!(Caller::from_row(&row).unwrap().role, Role::Sensor);
        assert!(issue(Role::Isp, None, "x", &[], now).is_err());
        assert!(issue(Role::Admin, Some("hikari-net"), "x", &[], now).is_err());
        assert!(issue(Role::Isp, Some("Bad Handle"), "x", &[], now).is_err());
        let mut revoked = row.clone();
        revoked.revoked_at = Some(now);
        assert_eq!(Caller::from_row(&revoked), None);
    }

    #[test]
    fn sensor_tokens_hold_few_plain_names_that_no_other_live_token_holds() {
        let now = "2026-11-25T00:00:00Z".parse().unwrap();
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert!(issue(Role::Sensor, None, "<b>x</b>", &[], now).is_err(), "labels of sensor tokens are names");
        assert!(issue(Role::Sensor, None, "ok", &names(&["also ok"]), now).is_err());
        assert!(issue(Role::Isp, Some("hikari-net"), "Portal of Hikari", &names(&["a"]), now).is_err());
        let crowd: Vec<String> = (0..MAX_SENSOR_NAMES).map(|n| format!("s{n}")).collect();
        assert!(issue(Role::Sensor, None, "x", &crowd, now).is_err(), "a crowd of names is refused");
        let (_, row) = issue(Role::Surveyor, None, "survey-1", &names(&["survey-1b"]), now).unwrap();
        let caller = Caller::from_row(&row).unwrap();
        assert!(caller.may_name("survey-1") && caller.may_name("survey-1b") && !caller.may_name("darknet-a"));
        assert_eq!(names_taken(std::slice::from_ref(&row), &["survey-1b", "x"]), vec!["survey-1b"]);
        let mut revoked = row.clone();
        revoked.revoked_at = Some(now);
        assert!(names_taken(&[revoked], &["survey-1b"]).is_empty(), "a revoked token frees its names");
    }
}
