//! The record and checkpoint codecs: bytes in, values out, no I/O. The
//! format is described under "On-disk format" in the module docs.

use super::{Entry, Unflushed};
use crate::origin::Write;

const RECORD_MAGIC: [u8; 4] = *b"STJ1";
const CHECKPOINT_MAGIC: [u8; 4] = *b"STJC";
/// magic, body_len, crc32.
const HEADER_BYTES: usize = 12;
const SEQ_BYTES: usize = 8;
/// body_len is a u32 and the body holds the seq as well.
pub(super) const MAX_PAYLOAD_BYTES: usize = u32::MAX as usize - SEQ_BYTES;
const KIND_PUT: u8 = 1;
const KIND_DELETE: u8 = 2;

/// A record's size on disk for a payload (encoded write) of `payload_len`.
pub(super) fn record_len(payload_len: usize) -> u64 {
    (HEADER_BYTES + SEQ_BYTES) as u64 + payload_len as u64
}

pub(super) fn encode_write(write: &Write) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, text: &str) {
        // Longer fields make the payload exceed MAX_PAYLOAD_BYTES, which
        // `append` refuses before anything is written.
        out.extend_from_slice(&u32::try_from(text.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    let mut out = Vec::new();
    match write {
        Write::Put { id, value } => {
            out.reserve(9 + id.len() + value.len());
            out.push(KIND_PUT);
            field(&mut out, id);
            field(&mut out, value);
        }
        Write::Delete { id } => {
            out.reserve(5 + id.len());
            out.push(KIND_DELETE);
            field(&mut out, id);
        }
    }
    out
}

pub(super) fn encode_record(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let body_len = ((SEQ_BYTES + payload.len()) as u32).to_le_bytes();
    let seq = seq.to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&body_len);
    crc.update(&seq);
    crc.update(payload);
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&body_len);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&seq);
    out.extend_from_slice(payload);
}

/// Why the bytes at an offset are not a record.
#[derive(Debug, PartialEq, Eq)]
enum BadRecord {
    /// Fewer bytes than the header or its length claim: a torn write, or a
    /// damaged length.
    Incomplete,
    /// Wrong magic or checksum: a torn write, or damage.
    Damaged(&'static str),
    /// The checksum holds but the content does not parse: not a torn write.
    Invalid(String),
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes the record at the start of `bytes`: its entry and size.
fn decode_record(bytes: &[u8]) -> Result<(Entry, usize), BadRecord> {
    let header = bytes.get(..HEADER_BYTES).ok_or(BadRecord::Incomplete)?;
    if header[..4] != RECORD_MAGIC {
        return Err(BadRecord::Damaged("bad magic"));
    }
    let body_len = u32_at(header, 4).ok_or(BadRecord::Incomplete)? as usize;
    let crc = u32_at(header, 8).ok_or(BadRecord::Incomplete)?;
    let body = bytes
        .get(HEADER_BYTES..HEADER_BYTES + body_len)
        .ok_or(BadRecord::Incomplete)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[4..8]);
    hasher.update(body);
    if hasher.finalize() != crc {
        return Err(BadRecord::Damaged("checksum mismatch"));
    }
    let seq_bytes = body
        .get(..SEQ_BYTES)
        .ok_or_else(|| BadRecord::Invalid("body shorter than a seq".into()))?;
    let seq = u64::from_le_bytes(seq_bytes.try_into().map_err(|_| BadRecord::Invalid("seq".into()))?);
    let write = decode_write(&body[SEQ_BYTES..]).map_err(BadRecord::Invalid)?;
    Ok((Entry { seq, write }, HEADER_BYTES + body_len))
}

fn decode_write(payload: &[u8]) -> Result<Write, String> {
    fn field(payload: &[u8], at: &mut usize) -> Result<String, String> {
        let len = u32_at(payload, *at).ok_or("truncated field length")? as usize;
        let start = *at + 4;
        let text = payload.get(start..start + len).ok_or("truncated field")?;
        *at = start + len;
        String::from_utf8(text.to_vec()).map_err(|_| "field is not UTF-8".to_string())
    }
    let mut at = 1;
    let write = match payload.first() {
        Some(&KIND_PUT) => Write::Put {
            id: field(payload, &mut at)?,
            value: field(payload, &mut at)?,
        },
        Some(&KIND_DELETE) => Write::Delete {
            id: field(payload, &mut at)?,
        },
        other => return Err(format!("unknown write kind {other:?}")),
    };
    if at != payload.len() {
        return Err(format!("{} stray bytes after the write", payload.len() - at));
    }
    Ok(write)
}

/// A segment's valid records, and where its torn tail starts, if it has one.
#[derive(Debug)]
pub(super) struct ParsedSegment {
    pub(super) records: Vec<Unflushed>,
    pub(super) valid_bytes: u64,
    pub(super) torn: Option<Torn>,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Torn {
    pub(super) offset: u64,
    pub(super) reason: &'static str,
}

/// Damage that is not a torn tail.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Damage {
    pub(super) offset: u64,
    pub(super) reason: String,
}

/// Parses a segment whose first record must have seq `first_seq`. A bad
/// record with nothing valid after it is a torn tail; one followed by a
/// valid record, a checksummed record that does not parse, or a seq out of
/// order is damage.
pub(super) fn parse_segment(bytes: &[u8], first_seq: u64) -> Result<ParsedSegment, Damage> {
    let mut records = Vec::new();
    let mut offset = 0;
    let mut expected_seq = first_seq;
    while offset < bytes.len() {
        let at = offset as u64;
        match decode_record(&bytes[offset..]) {
            Ok((entry, len)) if entry.seq == expected_seq => {
                records.push(Unflushed {
                    entry,
                    record_bytes: len as u64,
                });
                offset += len;
                expected_seq += 1;
            }
            Ok((entry, _)) => {
                return Err(Damage {
                    offset: at,
                    reason: format!("seq {} where {expected_seq} was expected", entry.seq),
                });
            }
            Err(BadRecord::Invalid(reason)) => {
                return Err(Damage {
                    offset: at,
                    reason: format!("checksummed record does not parse: {reason}"),
                });
            }
            Err(bad) => {
                let reason = match bad {
                    BadRecord::Damaged(reason) => reason,
                    _ => "incomplete record",
                };
                if let Some(valid) = next_valid_record(bytes, offset + 1) {
                    return Err(Damage {
                        offset: at,
                        reason: format!("{reason}, followed by a valid record at offset {valid}"),
                    });
                }
                return Ok(ParsedSegment {
                    records,
                    valid_bytes: at,
                    torn: Some(Torn { offset: at, reason }),
                });
            }
        }
    }
    Ok(ParsedSegment {
        records,
        valid_bytes: offset as u64,
        torn: None,
    })
}

/// The offset of the first checksum-valid record at or after `from`.
fn next_valid_record(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len().saturating_sub(HEADER_BYTES - 1))
        .filter(|&at| bytes[at..].starts_with(&RECORD_MAGIC))
        .find(|&at| decode_record(&bytes[at..]).is_ok())
}

pub(super) fn encode_checkpoint(flushed_seq: u64) -> [u8; 16] {
    let mut out = [0; 16];
    out[..4].copy_from_slice(&CHECKPOINT_MAGIC);
    out[4..12].copy_from_slice(&flushed_seq.to_le_bytes());
    let crc = crc32fast::hash(&out[..12]);
    out[12..].copy_from_slice(&crc.to_le_bytes());
    out
}

pub(super) fn decode_checkpoint(bytes: &[u8]) -> Option<u64> {
    let bytes: &[u8; 16] = bytes.try_into().ok()?;
    if bytes[..4] != CHECKPOINT_MAGIC || u32_at(bytes, 12)? != crc32fast::hash(&bytes[..12]) {
        return None;
    }
    Some(u64::from_le_bytes(bytes[4..12].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(first_seq: u64, writes: &[Write]) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, write) in (first_seq..).zip(writes) {
            encode_record(&mut out, seq, &encode_write(write));
        }
        out
    }

    fn seqs(parsed: &ParsedSegment) -> Vec<u64> {
        parsed.records.iter().map(|r| r.entry.seq).collect()
    }

    #[test]
    fn records_round_trip() {
        let writes = [
            Write::put("a", "1"),
            Write::Delete { id: "b".into() },
            Write::put("", ""),
            Write::put("ключ", "значение"),
        ];
        let bytes = segment(7, &writes);
        let parsed = parse_segment(&bytes, 7).unwrap();
        assert_eq!(parsed.torn, None);
        assert_eq!(parsed.valid_bytes, bytes.len() as u64);
        let decoded: Vec<Write> = parsed.records.iter().map(|r| r.entry.write.clone()).collect();
        assert_eq!(decoded, writes);
        assert_eq!(seqs(&parsed), [7, 8, 9, 10]);
        let sizes: u64 = parsed.records.iter().map(|r| r.record_bytes).sum();
        assert_eq!(sizes, bytes.len() as u64);
        assert_eq!(
            parsed.records[0].record_bytes,
            record_len(encode_write(&writes[0]).len())
        );
    }

    #[test]
    fn every_truncation_is_a_torn_tail() {
        let bytes = segment(
            1,
            &[Write::put("a", "one"), Write::put("b", "two"), Write::put("c", "three")],
        );
        let whole = parse_segment(&bytes, 1).unwrap().records;
        for cut in 0..=bytes.len() {
            let parsed = parse_segment(&bytes[..cut], 1).unwrap();
            // The records that fit whole before the cut survive.
            let mut expected_valid = 0;
            let mut expected_records = 0;
            for record in &whole {
                if expected_valid + record.record_bytes <= cut as u64 {
                    expected_valid += record.record_bytes;
                    expected_records += 1;
                }
            }
            assert_eq!(parsed.valid_bytes, expected_valid, "cut at {cut}");
            assert_eq!(parsed.records.len(), expected_records, "cut at {cut}");
            assert_eq!(parsed.torn.is_some(), expected_valid != cut as u64, "cut at {cut}");
        }
    }

    #[test]
    fn garbage_or_zeros_after_the_last_record_are_a_torn_tail() {
        let mut bytes = segment(1, &[Write::put("a", "one"), Write::put("b", "two")]);
        let good = bytes.len() as u64;
        bytes.extend_from_slice(&[0; 100]);
        let parsed = parse_segment(&bytes, 1).unwrap();
        assert_eq!(seqs(&parsed), [1, 2]);
        assert_eq!(parsed.torn.map(|t| t.offset), Some(good));
        // A half-written record whose checksum fails.
        let mut bytes = segment(1, &[Write::put("a", "one"), Write::put("b", "two")]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let parsed = parse_segment(&bytes, 1).unwrap();
        assert_eq!(seqs(&parsed), [1]);
        assert!(parsed.torn.is_some());
    }

    #[test]
    fn damage_followed_by_a_valid_record_is_corruption() {
        let mut bytes = segment(
            1,
            &[Write::put("a", "one"), Write::put("b", "two"), Write::put("c", "three")],
        );
        bytes[HEADER_BYTES + SEQ_BYTES + 3] ^= 0x01;
        let damage = parse_segment(&bytes, 1).unwrap_err();
        assert_eq!(damage.offset, 0);
        assert!(damage.reason.contains("checksum"), "{}", damage.reason);
        // A damaged length field (reads as incomplete) is caught the same way.
        let mut bytes = segment(1, &[Write::put("a", "one"), Write::put("b", "two")]);
        bytes[5] = 0x7f;
        assert!(parse_segment(&bytes, 1).is_err());
    }

    #[test]
    fn out_of_order_seq_is_corruption() {
        let mut bytes = segment(1, &[Write::put("a", "one")]);
        bytes.extend(segment(3, &[Write::put("b", "two")]));
        let damage = parse_segment(&bytes, 1).unwrap_err();
        assert!(damage.reason.contains("seq 3 where 2"), "{}", damage.reason);
        assert!(parse_segment(&segment(5, &[Write::put("a", "one")]), 4).is_err());
    }

    #[test]
    fn checksummed_garbage_is_corruption() {
        let mut bytes = Vec::new();
        encode_record(&mut bytes, 1, &[9, 9, 9]);
        let damage = parse_segment(&bytes, 1).unwrap_err();
        assert!(damage.reason.contains("unknown write kind"), "{}", damage.reason);
        let mut bytes = Vec::new();
        encode_record(&mut bytes, 1, &[KIND_DELETE, 1, 0, 0, 0, 0xff]);
        assert!(parse_segment(&bytes, 1).unwrap_err().reason.contains("UTF-8"));
    }

    #[test]
    fn checkpoint_round_trips_and_rejects_damage() {
        let bytes = encode_checkpoint(123_456_789);
        assert_eq!(decode_checkpoint(&bytes), Some(123_456_789));
        for at in 0..bytes.len() {
            let mut damaged = bytes;
            damaged[at] ^= 0x10;
            assert_eq!(decode_checkpoint(&damaged), None);
        }
        assert_eq!(decode_checkpoint(&bytes[..15]), None);
    }
}
