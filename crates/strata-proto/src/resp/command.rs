//! Typed options of the commands whose arguments more than one front door
//! reads: SET's and GETEX's expiry and condition flags, and the NX/XX/GT/LT
//! flags of the EXPIRE family. Parsed once here, with Redis's own error
//! texts, so the server and the proxy cannot drift apart.
//!
//! Integers go through [`parse_strict_i64`] (Redis's `string2ll`): no `+`,
//! no leading zeros, no `-0`. Seconds are turned into milliseconds with
//! checked arithmetic; a value whose millisecond form does not fit an `i64`
//! is refused as Redis refuses it (`invalid expire time`).

use std::fmt;

use super::number::parse_strict_i64;

/// Why a command's arguments were refused; `Display` gives Redis's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// `ERR syntax error`
    Syntax,
    /// `ERR value is not an integer or out of range`
    NotAnInteger,
    /// `ERR invalid expire time in '<command>' command`, with the command's
    /// lowercase name.
    InvalidExpireTime(&'static str),
    /// `ERR NX and XX, GT or LT options at the same time are not compatible`
    IncompatibleExpireFlags,
    /// `ERR GT and LT options at the same time are not compatible`
    IncompatibleGtLt,
    /// `ERR Unsupported option <option>`, the option as sent (lossy UTF-8).
    UnsupportedOption(String),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax => f.write_str("ERR syntax error"),
            Self::NotAnInteger => f.write_str("ERR value is not an integer or out of range"),
            Self::InvalidExpireTime(command) => write!(f, "ERR invalid expire time in '{command}' command"),
            Self::IncompatibleExpireFlags => {
                f.write_str("ERR NX and XX, GT or LT options at the same time are not compatible")
            }
            Self::IncompatibleGtLt => f.write_str("ERR GT and LT options at the same time are not compatible"),
            Self::UnsupportedOption(option) => write!(f, "ERR Unsupported option {option}"),
        }
    }
}

impl std::error::Error for CommandError {}

/// An expiry as SET and GETEX take it. Values are positive; parsing
/// guarantees the millisecond form of each fits an `i64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// `EX seconds`, relative.
    Ex(u64),
    /// `PX milliseconds`, relative.
    Px(u64),
    /// `EXAT unix-seconds`, absolute.
    ExAt(u64),
    /// `PXAT unix-milliseconds`, absolute.
    PxAt(u64),
}

/// An [`Expiry`] in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryMs {
    /// This many ms from now.
    After(u64),
    /// At this time, ms since the Unix epoch.
    At(u64),
}

impl Expiry {
    /// The expiry in milliseconds, relative or absolute; `None` if the
    /// seconds overflow (never for a parsed expiry).
    pub fn to_ms(self) -> Option<ExpiryMs> {
        let in_range = |ms: u64| (ms <= i64::MAX as u64).then_some(ms);
        match self {
            Self::Ex(s) => s.checked_mul(1000).and_then(in_range).map(ExpiryMs::After),
            Self::Px(ms) => in_range(ms).map(ExpiryMs::After),
            Self::ExAt(s) => s.checked_mul(1000).and_then(in_range).map(ExpiryMs::At),
            Self::PxAt(ms) => in_range(ms).map(ExpiryMs::At),
        }
    }

    /// The absolute deadline, ms since the Unix epoch, given the time now;
    /// `None` when it would overflow (Redis then refuses the command with
    /// `invalid expire time`). The deadline may be in the past.
    pub fn deadline_ms(self, now_ms: u64) -> Option<u64> {
        let deadline = match self.to_ms()? {
            ExpiryMs::After(ms) => now_ms.checked_add(ms)?,
            ExpiryMs::At(ms) => ms,
        };
        (deadline <= i64::MAX as u64).then_some(deadline)
    }

    fn parse(unit: &[u8], value: Option<&[u8]>, command: &'static str) -> Result<Option<Self>, CommandError> {
        let make: fn(u64) -> Self = if unit.eq_ignore_ascii_case(b"EX") {
            Self::Ex
        } else if unit.eq_ignore_ascii_case(b"PX") {
            Self::Px
        } else if unit.eq_ignore_ascii_case(b"EXAT") {
            Self::ExAt
        } else if unit.eq_ignore_ascii_case(b"PXAT") {
            Self::PxAt
        } else {
            return Ok(None);
        };
        let value = value.ok_or(CommandError::Syntax)?;
        let value = parse_strict_i64(value).ok_or(CommandError::NotAnInteger)?;
        if value <= 0 {
            return Err(CommandError::InvalidExpireTime(command));
        }
        let expiry = make(value as u64);
        expiry.to_ms().ok_or(CommandError::InvalidExpireTime(command))?;
        Ok(Some(expiry))
    }
}

/// SET's write condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `NX`: only if the key does not exist.
    IfAbsent,
    /// `XX`: only if the key exists.
    IfPresent,
}

/// The options of `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t |
/// PXAT t | KEEPTTL]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// `EX`, `PX`, `EXAT` or `PXAT`.
    pub expiry: Option<Expiry>,
    /// `NX` or `XX`.
    pub condition: Option<Condition>,
    /// `GET`: reply the old value.
    pub get: bool,
    /// `KEEPTTL`: keep the existing item's expiry.
    pub keepttl: bool,
}

impl SetOptions {
    /// Parses the arguments after `SET key value`, as Redis 7 does: each
    /// option at most once, NX with XX and an expiry with another expiry
    /// or KEEPTTL a syntax error.
    pub fn parse(args: &[&[u8]]) -> Result<Self, CommandError> {
        let mut options = Self::default();
        let mut i = 0;
        while i < args.len() {
            let arg = args[i];
            if arg.eq_ignore_ascii_case(b"NX") && options.condition.is_none() {
                options.condition = Some(Condition::IfAbsent);
            } else if arg.eq_ignore_ascii_case(b"XX") && options.condition.is_none() {
                options.condition = Some(Condition::IfPresent);
            } else if arg.eq_ignore_ascii_case(b"GET") {
                options.get = true;
            } else if arg.eq_ignore_ascii_case(b"KEEPTTL") && !options.keepttl && options.expiry.is_none() {
                options.keepttl = true;
            } else {
                let expiry = if options.keepttl || options.expiry.is_some() {
                    None
                } else {
                    Expiry::parse(arg, args.get(i + 1).copied(), "set")?
                };
                options.expiry = Some(expiry.ok_or(CommandError::Syntax)?);
                i += 1;
            }
            i += 1;
        }
        Ok(options)
    }
}

/// What GETEX does to the key's expiry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GetExOptions {
    /// No option: a plain GET.
    #[default]
    Keep,
    /// `PERSIST`: remove the expiry.
    Persist,
    /// `EX`, `PX`, `EXAT` or `PXAT`.
    Expire(Expiry),
}

impl GetExOptions {
    /// Parses the arguments after `GETEX key`: at most one option.
    pub fn parse(args: &[&[u8]]) -> Result<Self, CommandError> {
        let mut options = Self::Keep;
        let mut i = 0;
        while i < args.len() {
            let arg = args[i];
            if options != Self::Keep {
                return Err(CommandError::Syntax);
            }
            if arg.eq_ignore_ascii_case(b"PERSIST") {
                options = Self::Persist;
            } else if let Some(expiry) = Expiry::parse(arg, args.get(i + 1).copied(), "getex")? {
                options = Self::Expire(expiry);
                i += 1;
            } else {
                return Err(CommandError::Syntax);
            }
            i += 1;
        }
        Ok(options)
    }
}

/// The `NX | XX | GT | LT` flags of EXPIRE, PEXPIRE, EXPIREAT and
/// PEXPIREAT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpireFlags {
    /// `NX`: only if the key has no expiry.
    pub nx: bool,
    /// `XX`: only if the key has an expiry.
    pub xx: bool,
    /// `GT`: only if the new expiry is later (no expiry counts as infinite).
    pub gt: bool,
    /// `LT`: only if the new expiry is earlier.
    pub lt: bool,
}

impl ExpireFlags {
    /// Parses the arguments after `EXPIRE key time`, as Redis 7 does
    /// (repeats allowed; NX with another flag, or GT with LT, refused).
    pub fn parse(args: &[&[u8]]) -> Result<Self, CommandError> {
        let mut flags = Self::default();
        for &arg in args {
            if arg.eq_ignore_ascii_case(b"NX") {
                flags.nx = true;
            } else if arg.eq_ignore_ascii_case(b"XX") {
                flags.xx = true;
            } else if arg.eq_ignore_ascii_case(b"GT") {
                flags.gt = true;
            } else if arg.eq_ignore_ascii_case(b"LT") {
                flags.lt = true;
            } else {
                return Err(CommandError::UnsupportedOption(
                    String::from_utf8_lossy(arg).into_owned(),
                ));
            }
        }
        if flags.nx && (flags.xx || flags.gt || flags.lt) {
            return Err(CommandError::IncompatibleExpireFlags);
        }
        if flags.gt && flags.lt {
            return Err(CommandError::IncompatibleGtLt);
        }
        Ok(flags)
    }

    /// Whether the flags allow setting the expiry `new_at_ms` on a key
    /// whose current expiry is `current_at_ms` (`None`: no expiry).
    pub fn allows(self, current_at_ms: Option<u64>, new_at_ms: i64) -> bool {
        let has_ttl = current_at_ms.is_some();
        // No expiry counts as an infinite one for GT and LT.
        let current = current_at_ms.map_or(i64::MAX, |at| i64::try_from(at).unwrap_or(i64::MAX));
        !(self.nx && has_ttl
            || self.xx && !has_ttl
            || self.gt && new_at_ms <= current
            || self.lt && new_at_ms >= current)
    }
}

/// The keys whose values a write would have replaced, for a write refused
/// because a value is too large: the refusal removes them (memcached's
/// rule — no client may read the value the failed write meant to replace —
/// applied to RESP by the server and the proxy alike). `args` is the
/// request, command name first; `None` marks an argument not at hand (the
/// refused value itself, or one too long to keep). `SET … NX` would have
/// left an existing value alone, so it removes nothing; commands that do
/// not replace a value remove nothing.
pub fn keys_replaced_by<'a>(args: &[Option<&'a [u8]>]) -> Vec<&'a [u8]> {
    let Some(Some(name)) = args.first() else {
        return Vec::new();
    };
    let is = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());
    let positions: Vec<usize> = if is("set") {
        let conditional = args.iter().skip(3).flatten().any(|arg| arg.eq_ignore_ascii_case(b"NX"));
        if conditional { Vec::new() } else { vec![1] }
    } else if ["setex", "psetex", "getset", "append", "setrange", "lset"]
        .iter()
        .any(|w| is(w))
    {
        vec![1]
    } else if is("mset") {
        (1..args.len()).step_by(2).collect()
    } else {
        Vec::new()
    };
    positions
        .into_iter()
        .filter_map(|i| args.get(i).copied().flatten())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_refused_write_names_the_keys_it_would_have_replaced() {
        use super::keys_replaced_by;
        let big = None;
        assert_eq!(keys_replaced_by(&[Some(b"SET"), Some(b"k"), big]), vec![&b"k"[..]]);
        assert_eq!(
            keys_replaced_by(&[Some(b"set"), Some(b"k"), big, Some(b"nx")]),
            Vec::<&[u8]>::new()
        );
        assert_eq!(
            keys_replaced_by(&[Some(b"MSET"), Some(b"a"), big, Some(b"b"), Some(b"1"), None, Some(b"2")]),
            vec![&b"a"[..], b"b"]
        );
        assert_eq!(keys_replaced_by(&[Some(b"APPEND"), Some(b"k"), big]), vec![&b"k"[..]]);
        assert_eq!(keys_replaced_by(&[Some(b"GET"), big]), Vec::<&[u8]>::new());
        assert_eq!(keys_replaced_by(&[Some(b"SET"), big, Some(b"v")]), Vec::<&[u8]>::new());
        assert_eq!(keys_replaced_by(&[]), Vec::<&[u8]>::new());
    }

    use super::*;

    fn set(args: &str) -> Result<SetOptions, CommandError> {
        let args: Vec<&[u8]> = args.split_whitespace().map(str::as_bytes).collect();
        SetOptions::parse(&args)
    }

    fn getex(args: &str) -> Result<GetExOptions, CommandError> {
        let args: Vec<&[u8]> = args.split_whitespace().map(str::as_bytes).collect();
        GetExOptions::parse(&args)
    }

    #[test]
    fn set_options_parse() {
        assert_eq!(set(""), Ok(SetOptions::default()));
        assert_eq!(
            set("nx get ex 10"),
            Ok(SetOptions {
                expiry: Some(Expiry::Ex(10)),
                condition: Some(Condition::IfAbsent),
                get: true,
                keepttl: false,
            })
        );
        assert_eq!(
            set("XX KEEPTTL").map(|o| (o.condition, o.keepttl)),
            Ok((Some(Condition::IfPresent), true))
        );
        assert_eq!(set("PXAT 5").map(|o| o.expiry), Ok(Some(Expiry::PxAt(5))));
        assert_eq!(set("exat 5").map(|o| o.expiry), Ok(Some(Expiry::ExAt(5))));
        assert_eq!(set("px 5").map(|o| o.expiry), Ok(Some(Expiry::Px(5))));
    }

    #[test]
    fn set_option_errors_match_redis() {
        let syntax = Err(CommandError::Syntax);
        let not_int = Err(CommandError::NotAnInteger);
        let invalid = Err(CommandError::InvalidExpireTime("set"));
        assert_eq!(set("EX 1 EX 2"), syntax);
        assert_eq!(set("EX 1 PX 2"), syntax);
        assert_eq!(set("EX 1 KEEPTTL"), syntax);
        assert_eq!(set("KEEPTTL EX 1"), syntax);
        assert_eq!(set("KEEPTTL KEEPTTL"), syntax);
        assert_eq!(set("NX XX"), syntax);
        assert_eq!(set("NX NX"), syntax);
        assert_eq!(set("EX"), syntax);
        assert_eq!(set("BOGUS"), syntax);
        assert_eq!(set("PERSIST"), syntax);
        assert_eq!(set("EX +5"), not_int);
        assert_eq!(set("EX 007"), not_int);
        assert_eq!(set("EX -0"), not_int);
        assert_eq!(set("EX 1.5"), not_int);
        assert_eq!(set("EX 9223372036854775808"), not_int);
        assert_eq!(set("EX 0"), invalid);
        assert_eq!(set("PX -1"), invalid);
        // Seconds whose milliseconds overflow: refused, not wrapped.
        assert_eq!(set("EXAT 9223372036854775807"), invalid);
        assert_eq!(set("EX 9223372036854775807"), invalid);
        assert_eq!(set("EX 9223372036854776"), invalid);
        assert_eq!(
            set("EX 9223372036854775").map(|o| o.expiry),
            Ok(Some(Expiry::Ex(9_223_372_036_854_775)))
        );
        assert_eq!(
            CommandError::InvalidExpireTime("set").to_string(),
            "ERR invalid expire time in 'set' command"
        );
        assert_eq!(CommandError::Syntax.to_string(), "ERR syntax error");
        assert_eq!(
            CommandError::NotAnInteger.to_string(),
            "ERR value is not an integer or out of range"
        );
    }

    #[test]
    fn deadlines_are_checked() {
        assert_eq!(Expiry::Ex(2).deadline_ms(1_000), Some(3_000));
        assert_eq!(Expiry::Px(2).deadline_ms(1_000), Some(1_002));
        assert_eq!(Expiry::ExAt(2).deadline_ms(5_000), Some(2_000));
        assert_eq!(Expiry::PxAt(2).deadline_ms(5_000), Some(2));
        assert_eq!(Expiry::PxAt(i64::MAX as u64).deadline_ms(5), Some(i64::MAX as u64));
        assert_eq!(Expiry::Px(i64::MAX as u64).deadline_ms(1), None);
        assert_eq!(Expiry::ExAt(u64::MAX).deadline_ms(0), None);
        assert_eq!(Expiry::Ex(u64::MAX / 10).deadline_ms(0), None);
        assert_eq!(Expiry::Ex(3).to_ms(), Some(ExpiryMs::After(3_000)));
        assert_eq!(Expiry::ExAt(3).to_ms(), Some(ExpiryMs::At(3_000)));
    }

    #[test]
    fn expire_flags_parse() {
        let flags = |args: &str| {
            let args: Vec<&[u8]> = args.split_whitespace().map(str::as_bytes).collect();
            ExpireFlags::parse(&args)
        };
        assert_eq!(flags(""), Ok(ExpireFlags::default()));
        assert_eq!(flags("xx gt").map(|f| (f.xx, f.gt)), Ok((true, true)));
        assert_eq!(flags("NX XX"), Err(CommandError::IncompatibleExpireFlags));
        assert_eq!(flags("GT LT"), Err(CommandError::IncompatibleGtLt));
        assert_eq!(
            flags("FOO").map_err(|e| e.to_string()),
            Err("ERR Unsupported option FOO".into())
        );
        let gt = ExpireFlags {
            gt: true,
            ..ExpireFlags::default()
        };
        assert!(!gt.allows(None, 5));
        assert!(gt.allows(Some(4), 5));
        let nx = ExpireFlags {
            nx: true,
            ..ExpireFlags::default()
        };
        assert!(nx.allows(None, 5));
        assert!(!nx.allows(Some(4), 5));
    }

    #[test]
    fn getex_options_parse() {
        assert_eq!(getex(""), Ok(GetExOptions::Keep));
        assert_eq!(getex("persist"), Ok(GetExOptions::Persist));
        assert_eq!(getex("EX 5"), Ok(GetExOptions::Expire(Expiry::Ex(5))));
        assert_eq!(getex("EX 5 PERSIST"), Err(CommandError::Syntax));
        assert_eq!(getex("PERSIST PERSIST"), Err(CommandError::Syntax));
        assert_eq!(getex("EX 1 EX 2"), Err(CommandError::Syntax));
        assert_eq!(getex("EX"), Err(CommandError::Syntax));
        assert_eq!(getex("KEEPTTL"), Err(CommandError::Syntax));
        assert_eq!(getex("EX 0"), Err(CommandError::InvalidExpireTime("getex")));
        assert_eq!(getex("PX 007"), Err(CommandError::NotAnInteger));
    }
}
