//! RESP2/RESP3: PLACEHOLDER, being written.
