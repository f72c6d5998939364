//! memcached text and meta protocol: PLACEHOLDER, being written.
