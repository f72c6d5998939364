//! Readings of a process from Linux's `/proc`: CPU time used and resident
//! memory — of this process (`INFO`, memcached's `stats`, the server's
//! metrics) or of another one (the load generator watching the server it
//! measures). One parser for every reader.
//!
//! Throughput alone hides how much of a core a server needed for it: ops
//! per server CPU-second is the fairer figure, and it needs the server's
//! CPU time over exactly the measured interval.

use std::path::PathBuf;
use std::time::Duration;

/// Linux reports CPU times in `/proc/<pid>/stat` in clock ticks of
/// `USER_HZ`, which is 100 on every architecture Linux supports for
/// userspace (`sysconf(_SC_CLK_TCK)` returns it).
const TICKS_PER_SECOND: u64 = 100;

/// CPU time a process has used, all its threads together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Time in user mode (`utime`).
    pub user: Duration,
    /// Time in the kernel on the process's behalf (`stime`).
    pub system: Duration,
}

impl CpuTimes {
    /// User plus system time.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }
}

/// A process watched through `/proc`.
#[derive(Clone, Debug)]
pub struct Watched {
    pid: u32,
    dir: PathBuf,
}

impl Watched {
    /// Watches `pid`; fails if there is no such process (or no `/proc`).
    pub fn new(pid: u32) -> std::io::Result<Self> {
        let watched = Self {
            pid,
            dir: PathBuf::from(format!("/proc/{pid}")),
        };
        watched.cpu_times()?;
        Ok(watched)
    }

    /// This process (`/proc/self`); reading it fails only where there is
    /// no `/proc`.
    pub fn this() -> Self {
        Self {
            pid: std::process::id(),
            dir: PathBuf::from("/proc/self"),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// User and system CPU time the process has used.
    pub fn cpu_times(&self) -> std::io::Result<CpuTimes> {
        let stat = std::fs::read_to_string(self.dir.join("stat"))?;
        parse_cpu_ticks(&stat)
            .map(|(user, system)| CpuTimes {
                user: ticks_to_duration(user),
                system: ticks_to_duration(system),
            })
            .ok_or_else(|| std::io::Error::other(format!("cannot parse /proc/{}/stat", self.pid)))
    }

    /// User plus system CPU time the process has used.
    pub fn cpu_time(&self) -> std::io::Result<Duration> {
        self.cpu_times().map(|times| times.total())
    }

    /// Resident set size in bytes.
    pub fn resident_bytes(&self) -> std::io::Result<u64> {
        let status = std::fs::read_to_string(self.dir.join("status"))?;
        parse_vm_rss(&status).ok_or_else(|| std::io::Error::other(format!("no VmRSS in /proc/{}/status", self.pid)))
    }
}

/// Resident memory of this process in bytes (0 where `/proc` is missing).
pub fn resident_bytes() -> u64 {
    Watched::this().resident_bytes().unwrap_or(0)
}

/// CPU time of this process (zero where `/proc` is missing).
pub fn cpu_times() -> CpuTimes {
    Watched::this().cpu_times().unwrap_or_default()
}

fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

/// `(utime, stime)` (fields 14 and 15) from a `/proc/<pid>/stat` line. The
/// command name (field 2) is parenthesised and may contain spaces, so
/// fields are counted from the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace();
    // after_name starts at field 3 (state); utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// `VmRSS:  1234 kB` from `/proc/<pid>/status`, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_past_the_name() {
        let stat = "4242 (strata server) S 1 4242 4242 0 -1 4194560 5012 0 0 0 317 45 0 0 20 0 3 0 12345 1000000 2000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some((317, 45)));
    }

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tstrata\nVmPeak:\t  9000 kB\nVmRSS:\t  5120 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(5120 * 1024));
    }

    #[test]
    fn this_process_can_be_watched() {
        let me = Watched::new(std::process::id()).unwrap();
        assert!(me.resident_bytes().unwrap() > 0);
        me.cpu_time().unwrap();
        assert!(resident_bytes() > 0);
        // Spin a little so there is something to count.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        let times = cpu_times();
        assert_eq!(times.total(), times.user + times.system);
    }
}
