//! Fuzzes a whole memcache session over a real engine: arbitrary bytes, fed in
//! reads of arbitrary sizes, must never panic the session, never consume
//! more than they hold, and never push the engine over its byte limit.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| strata_server::fuzzing::memcache_session(data));
