//! `strata invalidator`. (Being written.)
