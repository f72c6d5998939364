//! The `test_decoding` output plugin's text, one line at a time, parsed
//! into what invalidation cares about (a [`Line`]). Pure functions over
//! strings, unit-tested without a database; which lines count and what
//! they give is described under "What is decoded" in the parent module's
//! docs, and turning a peek's rows into whole transactions is the parent's
//! `decode_rows`.

use super::{FLUSH_PREFIX, MESSAGE_PREFIX};
use crate::item::cache_key;

/// One line of `test_decoding` output, as far as invalidation cares.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line {
    /// `BEGIN [xid]`.
    Begin,
    /// `COMMIT [xid] [(at <timestamp>)]`.
    Commit {
        /// The commit time, if printed and understood.
        committed_at_ms: Option<i64>,
    },
    /// Cache keys: from a row of `items`, or from a `strata.invalidate`
    /// message.
    Keys {
        /// The keys, in order.
        keys: Vec<String>,
        /// False for a non-transactional message.
        transactional: bool,
    },
    /// A change to `items` that names no key (why).
    Unkeyed(String),
    /// A `strata.flush` message: flush the whole cluster.
    Flush {
        /// False for a non-transactional message.
        transactional: bool,
    },
    /// Anything else: other tables, other message prefixes.
    Other,
    /// A line about `items` that does not parse (why).
    Malformed(String),
}

/// Parses one line of `test_decoding` output.
pub(super) fn parse_line(data: &str) -> Line {
    if data == "BEGIN" || data.starts_with("BEGIN ") {
        return Line::Begin;
    }
    if data == "COMMIT" || data.starts_with("COMMIT ") {
        let committed_at_ms = data
            .find(" (at ")
            .and_then(|at| data[at + 5..].strip_suffix(')'))
            .and_then(parse_timestamp_ms);
        return Line::Commit { committed_at_ms };
    }
    if let Some(rest) = data.strip_prefix("table ") {
        return parse_table_line(rest);
    }
    if let Some(rest) = data.strip_prefix("message: transactional: ") {
        return parse_message(rest);
    }
    Line::Other
}

/// `<schema>.<table>: <ACTION>: <tuple>` (after `table `).
fn parse_table_line(rest: &str) -> Line {
    let Some((_schema, rest)) = take_identifier(rest) else {
        return Line::Other;
    };
    let Some(rest) = rest.strip_prefix('.') else {
        return Line::Other;
    };
    let Some((table, rest)) = take_identifier(rest) else {
        return Line::Other;
    };
    if table != "items" {
        return Line::Other;
    }
    let Some(rest) = rest.strip_prefix(": ") else {
        return Line::Malformed("no ': ' after the table name".into());
    };
    let Some((action, tuple)) = rest.split_once(':') else {
        return Line::Malformed("no action".into());
    };
    let tuple = tuple.trim_start();
    match action {
        "INSERT" | "UPDATE" | "DELETE" => {}
        "TRUNCATE" => return Line::Unkeyed("TRUNCATE of items".into()),
        _ => return Line::Other,
    }
    if tuple.starts_with("(no-tuple-data)") {
        return Line::Unkeyed(format!(
            "{action} on items without key columns (REPLICA IDENTITY NOTHING?)"
        ));
    }
    match tuple_ids(tuple) {
        Ok(ids) if ids.is_empty() => Line::Malformed(format!("{action} without an id column")),
        Ok(ids) => Line::Keys {
            keys: ids.iter().map(|id| cache_key(id)).collect(),
            transactional: true,
        },
        Err(why) => Line::Malformed(why),
    }
}

/// The values of every `id` column in a tuple (`old-key:` and
/// `new-tuple:` sections included), each once, in order.
fn tuple_ids(mut rest: &str) -> Result<Vec<String>, String> {
    let mut ids: Vec<String> = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            return Ok(ids);
        }
        if let Some(after) = rest
            .strip_prefix("old-key:")
            .or_else(|| rest.strip_prefix("new-tuple:"))
        {
            rest = after;
            continue;
        }
        let (name, after) = take_identifier(rest).ok_or("bad column name")?;
        let after = after.strip_prefix('[').ok_or("no '[' after a column name")?;
        // A type name may hold brackets (`text[]`) and spaces
        // (`timestamp with time zone`), never "]:".
        let end = after.find("]:").ok_or("no ']:' after a column type")?;
        let (value, after) = take_value(&after[end + 2..])?;
        rest = after;
        if name == "id" {
            match value {
                Some(id) if !ids.contains(&id) => ids.push(id),
                Some(_) => {}
                None => return Err("null id".into()),
            }
        }
    }
}

/// A column value: a quoted literal (`'it''s'`), or an unquoted token up to
/// the next space (numbers, booleans, `null` → `None`,
/// `unchanged-toast-datum`).
fn take_value(rest: &str) -> Result<(Option<String>, &str), String> {
    if let Some(quoted) = rest.strip_prefix('\'') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((index, ch)) = chars.next() {
            if ch != '\'' {
                value.push(ch);
                continue;
            }
            if quoted[index + 1..].starts_with('\'') {
                value.push('\'');
                chars.next();
                continue;
            }
            return Ok((Some(value), &quoted[index + 1..]));
        }
        return Err("unterminated quoted value".into());
    }
    let end = rest.find(' ').unwrap_or(rest.len());
    let token = &rest[..end];
    let value = (token != "null").then(|| token.to_owned());
    Ok((value, &rest[end..]))
}

/// An SQL identifier as PostgreSQL prints it: bare (up to `.`, `:`, `[` or
/// a space) or double-quoted with `""` for a quote.
fn take_identifier(rest: &str) -> Option<(String, &str)> {
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.char_indices();
        while let Some((index, ch)) = chars.next() {
            if ch != '"' {
                name.push(ch);
            } else if quoted[index + 1..].starts_with('"') {
                name.push('"');
                chars.next();
            } else {
                return Some((name, &quoted[index + 1..]));
            }
        }
        return None;
    }
    let end = rest.find(['.', ':', '[', ' ']).unwrap_or(rest.len());
    (end > 0).then(|| (rest[..end].to_owned(), &rest[end..]))
}

/// `<0|1> prefix: <prefix>, sz: <bytes> content:<content>` (after
/// `message: transactional: `).
fn parse_message(rest: &str) -> Line {
    let transactional = rest.starts_with('1');
    let Some(rest) = rest.get(1..).and_then(|r| r.strip_prefix(" prefix: ")) else {
        return Line::Other;
    };
    // The prefix is free text; find the ", sz: N content:" whose N is the
    // length of what follows.
    let mut fallback = None;
    for (at, _) in rest.match_indices(", sz: ") {
        let after = &rest[at + 6..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(size) = after[..digits].parse::<usize>() else {
            continue;
        };
        let Some(content) = after[digits..].strip_prefix(" content:") else {
            continue;
        };
        let candidate = (&rest[..at], content);
        if content.len() == size {
            fallback = Some(candidate);
            break;
        }
        // Not valid UTF-8 on the server (decoded lossily here): sizes
        // differ; take the first well-formed header.
        fallback = fallback.or(Some(candidate));
    }
    let Some((prefix, content)) = fallback else {
        return Line::Other;
    };
    if prefix == FLUSH_PREFIX {
        return Line::Flush { transactional };
    }
    if prefix != MESSAGE_PREFIX {
        return Line::Other;
    }
    let keys: Vec<String> = content
        .split('\n')
        .map(|key| key.trim_end_matches('\r'))
        .filter(|key| !key.is_empty())
        .map(str::to_owned)
        .collect();
    Line::Keys { keys, transactional }
}
/// `2026-05-03 12:34:56.123456+00` (ISO, as `timestamptz_to_str` prints:
/// optional fraction, offset `±HH[:MM[:SS]]`) as milliseconds since the
/// Unix epoch. `None` for anything else (`infinity`, BC dates).
fn parse_timestamp_ms(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(' ')?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let offset_at = time.find(['+', '-'])?;
    let (clock, offset) = time.split_at(offset_at);
    let mut clock_parts = clock.splitn(3, ':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let seconds = clock_parts.next()?;
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let second: i64 = whole.parse().ok()?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis: i64 = format!("{fraction:0<3}")[..3].parse().ok()?;
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let mut offset_parts = offset[1..].split(':');
    let mut offset_seconds = 0;
    for (part, unit) in offset_parts.by_ref().zip([3600, 60, 1]) {
        offset_seconds += part.parse::<i64>().ok()? * unit;
    }
    if offset_parts.next().is_some()
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let local = ((days * 24 + hour) * 60 + minute) * 60 + second;
    Some((local - sign * offset_seconds) * 1000 + millis)
}

/// Days from 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(line: &str) -> Vec<String> {
        match parse_line(line) {
            Line::Keys { keys, .. } => keys,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn table_rows_give_item_keys() {
        assert_eq!(
            keys(
                "table public.items: INSERT: id[text]:'a' value[text]:'x' version[bigint]:1 updated_at[timestamp with time zone]:'2026-12-01 09:54:07.049863+00'"
            ),
            ["item:a"]
        );
        assert_eq!(
            keys(
                "table public.items: UPDATE: id[text]:'it''s' value[text]:'it''s' version[bigint]:2 updated_at[timestamp with time zone]:'2026-12-01 09:54:07+00'"
            ),
            ["item:it's"]
        );
        assert_eq!(keys("table public.items: DELETE: id[text]:'b b'"), ["item:b b"]);
        // The id changed: both keys.
        assert_eq!(
            keys(
                "table public.items: UPDATE: old-key: id[text]:'a' new-tuple: id[text]:'c' value[text]:'v' version[bigint]:1 updated_at[timestamp with time zone]:'2026-12-01 09:54:07.049863+00'"
            ),
            ["item:a", "item:c"]
        );
        // Values holding the syntax itself, a newline, and the id not first.
        assert_eq!(
            keys(
                "table app.items: INSERT: value[text]:'x id[text]:''y'' ' tags[text[]]:'{a,b}' n[integer]:null id[text]:'line\nbreak'"
            ),
            ["item:line\nbreak"]
        );
        assert_eq!(keys("table public.items: INSERT: id[text]:''"), ["item:"]);
        // A quoted schema name.
        assert_eq!(keys("table \"My.Schema\".items: DELETE: id[text]:'q'"), ["item:q"]);
    }

    #[test]
    fn other_lines_are_ignored_or_flagged() {
        assert_eq!(parse_line("BEGIN 725"), Line::Begin);
        assert_eq!(parse_line("BEGIN"), Line::Begin);
        assert_eq!(parse_line("table public.orders: INSERT: id[integer]:1"), Line::Other);
        assert_eq!(
            parse_line("table public.items_archive: INSERT: id[text]:'a'"),
            Line::Other
        );
        assert_eq!(parse_line("table public.\"Items\": INSERT: id[text]:'a'"), Line::Other);
        assert!(matches!(
            parse_line("table public.items: TRUNCATE: (no-flags)"),
            Line::Unkeyed(_)
        ));
        assert!(matches!(
            parse_line("table public.items: DELETE: (no-tuple-data)"),
            Line::Unkeyed(_)
        ));
        assert!(matches!(
            parse_line("table public.items: INSERT: id[text]:'open"),
            Line::Malformed(_)
        ));
        assert!(matches!(
            parse_line("table public.items: INSERT: value[text]:'v'"),
            Line::Malformed(_)
        ));
        assert!(matches!(
            parse_line("table public.items: INSERT: id[text]:null"),
            Line::Malformed(_)
        ));
        assert_eq!(
            parse_line("message: transactional: 1 prefix: other.prefix, sz: 6 content:item:x"),
            Line::Other
        );
    }

    #[test]
    fn a_flush_message_asks_for_a_flush() {
        assert_eq!(
            parse_line("message: transactional: 0 prefix: strata.flush, sz: 12 content:slot created"),
            Line::Flush { transactional: false }
        );
        assert_eq!(
            parse_line("message: transactional: 1 prefix: strata.flush, sz: 0 content:"),
            Line::Flush { transactional: true }
        );
    }

    #[test]
    fn messages_name_keys() {
        assert_eq!(
            parse_line("message: transactional: 1 prefix: strata.invalidate, sz: 13 content:item:x\nitem:y"),
            Line::Keys {
                keys: vec!["item:x".into(), "item:y".into()],
                transactional: true
            }
        );
        assert_eq!(
            parse_line("message: transactional: 0 prefix: strata.invalidate, sz: 10 content:item:nt\r\n\n"),
            Line::Keys {
                keys: vec!["item:nt".into()],
                transactional: false
            }
        );
        // Content that looks like a header.
        assert_eq!(
            keys("message: transactional: 1 prefix: strata.invalidate, sz: 18 content:k, sz: 1 content:x"),
            ["k, sz: 1 content:x"]
        );
    }

    #[test]
    fn commit_times_parse_to_epoch_ms() {
        assert_eq!(
            parse_line("COMMIT 726 (at 2026-12-01 09:54:07.051457+00)"),
            Line::Commit {
                committed_at_ms: Some(1_796_118_847_051)
            }
        );
        assert_eq!(parse_line("COMMIT 726"), Line::Commit { committed_at_ms: None });
        assert_eq!(parse_timestamp_ms("1970-01-01 00:00:00+00"), Some(0));
        assert_eq!(parse_timestamp_ms("1970-01-01 00:00:00.5+00"), Some(500));
        assert_eq!(parse_timestamp_ms("1970-01-01 05:30:00+05:30"), Some(0));
        assert_eq!(parse_timestamp_ms("1969-12-31 23:00:00-01"), Some(0));
        assert_eq!(
            parse_timestamp_ms("2000-02-29 12:00:00.999999+00"),
            Some(951_825_600_999)
        );
        assert_eq!(parse_timestamp_ms("infinity"), None);
        assert_eq!(parse_timestamp_ms("2026-13-01 00:00:00+00"), None);
    }
}
