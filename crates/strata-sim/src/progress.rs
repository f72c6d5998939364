//! A progress bar on stderr for long simulations.
//!
//! Shown only when stderr is a terminal and the run replays enough requests
//! to take a noticeable time; otherwise (pipes, CI logs, tests) it draws
//! nothing, so output stays clean. indicatif's bar is internally locked and
//! rate-limited, so all worker threads report into one bar directly.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::Progress;

/// Runs shorter than this many replayed requests get no bar.
pub const MIN_REQUESTS_FOR_BAR: u64 = 20_000_000;

/// A progress bar counting replayed requests.
#[derive(Debug)]
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar for `total` requests; hidden unless stderr is a terminal and
    /// `total` is at least [`MIN_REQUESTS_FOR_BAR`].
    pub fn new(total: u64) -> Self {
        let visible = total >= MIN_REQUESTS_FOR_BAR && std::io::stderr().is_terminal();
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        // The template is a constant; should it ever fail to parse, the
        // default style is a fine fallback.
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} simulating [{elapsed_precise}] [{wide_bar}] {percent:>3}% {human_pos}/{human_len} requests, ETA {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Self { bar }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn advance(&self, requests: u64) {
        self.bar.inc(requests);
    }
}
