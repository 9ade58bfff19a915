use uuid::Uuid;

/// The namespace under which botscope derives record ids (UUID version 5).
///
/// Fixed forever: changing it would change every stable id and break de-duplication of re-ingested
/// files.
const NAMESPACE: Uuid = Uuid::from_u128(0x5b0d_7c3e_9a41_4f2e_8c6d_1e2f_3a4b_5c6d);

/// Derives a stable record id from a record's natural key.
///
/// The same key always gives the same id, on every machine, so a file ingested twice, or the
/// same observation reported by two runs, lands once.
pub fn record_id(natural_key: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, natural_key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_id_and_different_key_different_id() {
        assert_eq!(record_id("finding|192.0.2.1"), record_id("finding|192.0.2.1"));
        assert_ne!(record_id("finding|192.0.2.1"), record_id("finding|192.0.2.2"));
        assert_eq!(record_id("x").get_version_num(), 5);
    }
}
