//! How a row is stored in the caches: its version and write time, then
//! its value — `version` (8 bytes LE) · `updated_at_ms` (8 bytes LE) ·
//! value (UTF-8). The same bytes live in L2 and L1, so a fill copies and
//! never re-encodes.

use crate::origin::Row;

/// The prefix of every cache key the node writes: `item:<id>`.
pub const KEY_PREFIX: &str = "item:";

/// The cache key of row `id`.
pub fn cache_key(id: &str) -> String {
    format!("{KEY_PREFIX}{id}")
}

/// The row id of a cache key, if it is one of the node's.
pub fn id_of(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key).ok()?.strip_prefix(KEY_PREFIX)
}

const HEADER: usize = 16;

/// Encodes `row` for the caches.
pub fn encode(row: &Row) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER + row.value.len());
    bytes.extend_from_slice(&row.version.to_le_bytes());
    bytes.extend_from_slice(&row.updated_at_ms.to_le_bytes());
    bytes.extend_from_slice(row.value.as_bytes());
    bytes
}

/// Decodes cached bytes back into the row `id`; `None` if they are not
/// a row this node wrote (another program's value under the same key).
pub fn decode(id: &str, bytes: &[u8]) -> Option<Row> {
    if bytes.len() < HEADER {
        return None;
    }
    let (header, value) = bytes.split_at(HEADER);
    let version = i64::from_le_bytes(header[..8].try_into().ok()?);
    let updated_at_ms = i64::from_le_bytes(header[8..].try_into().ok()?);
    Some(Row {
        id: id.to_owned(),
        value: String::from_utf8(value.to_vec()).ok()?,
        version,
        updated_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip() {
        let row = Row {
            id: "42".into(),
            value: "héllo".into(),
            version: 7,
            updated_at_ms: 1_700_000_000_123,
        };
        assert_eq!(decode("42", &encode(&row)), Some(row));
        assert_eq!(decode("42", b"short"), None);
        assert_eq!(id_of(cache_key("a b").as_bytes()), Some("a b"));
        assert_eq!(id_of(b"user:1"), None);
    }
}
