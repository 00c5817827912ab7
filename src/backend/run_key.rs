//! Run keys: what run locks and the recovery journal name a run by.
//!
//! `SERVICE.ENDPOINT` for a run of an endpoint; for a run of a
//! per-account endpoint, `SERVICE.ENDPOINT@CONNECTION`: each connected
//! account has its own run lock and its own journaled answers, so
//! refreshing one account never waits for, or settles, another. Endpoint
//! keys never hold `@` (names are identifiers); connection ids may, so a
//! key splits at its first `@`.

/// The run key of an endpoint, run for a connection or not.
pub fn join(endpoint: &str, connection: Option<&str>) -> String {
    match connection {
        Some(id) => format!("{endpoint}@{id}"),
        None => endpoint.to_string(),
    }
}

/// The endpoint and the connection of a run key.
pub fn split(key: &str) -> (&str, Option<&str>) {
    match key.split_once('@') {
        Some((endpoint, id)) => (endpoint, Some(id)),
        None => (key, None),
    }
}

/// The endpoint of a run key, as `SERVICE.ENDPOINT`.
pub fn endpoint_of(key: &str) -> &str {
    split(key).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_splits_at_its_first_at_sign() {
        assert_eq!(split("hubspot.refresh"), ("hubspot.refresh", None));
        let key = join("hubspot.refresh", Some("ops@acme-42"));
        assert_eq!(key, "hubspot.refresh@ops@acme-42");
        assert_eq!(split(&key), ("hubspot.refresh", Some("ops@acme-42")));
        assert_eq!(endpoint_of(&key), "hubspot.refresh");
    }
}
