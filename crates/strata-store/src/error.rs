//! The engine's errors.

/// Why a store operation did not happen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The item (key, value and overhead) is larger than the configured
    /// maximum item size or than what one shard may hold.
    #[error("item of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// Bytes the item would be charged.
        size: u64,
        /// The limit it exceeds.
        limit: u64,
    },
    /// A conditional write's condition did not hold (add on an existing key,
    /// replace on a missing one).
    #[error("not stored: condition not met")]
    NotStored,
    /// A compare-and-swap found a different version.
    #[error("item was modified since its version was read")]
    Exists,
    /// The key is not present (and the operation does not create it).
    #[error("no such key")]
    NotFound,
    /// The value is not an integer the operation can use.
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    /// A lease token no longer matches the item: the key was written,
    /// deleted or re-leased since the lease was granted.
    #[error("lease token is no longer valid")]
    LeaseInvalid,
    /// The store cannot do this.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// The arithmetic would overflow.
    #[error("increment or decrement would overflow")]
    Overflow,
}
