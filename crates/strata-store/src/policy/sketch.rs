//! PLACEHOLDER: the count-min frequency sketch.
