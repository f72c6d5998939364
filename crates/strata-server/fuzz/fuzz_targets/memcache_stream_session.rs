//! Fuzzes memcached retrievals answered as their keys arrive (the path a
//! multiget longer than the line limit takes; here the limit is 16 bytes,
//! so nearly every `get` line takes it): arbitrary bytes, fed in reads of
//! arbitrary sizes, must never panic the session, never consume more than
//! they hold, and never push the engine over its byte limit.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| strata_server::fuzzing::memcache_stream_session(data));
