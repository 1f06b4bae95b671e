//! CPU time and memory of a process, from Linux's `/proc`.
//!
//! `/proc/<pid>/stat` gives the CPU time the process spent in user and
//! kernel mode (`utime`, `stime`, fields 14 and 15, in clock ticks);
//! `/proc/<pid>/status` its resident memory now (`VmRSS`) and at its peak
//! (`VmHWM`, the high-water mark since the process started). `/proc/stat`
//! gives the whole machine's busy time, so a report can say when something
//! else (another benchmark, a browser test) took CPU during the window. The
//! runner samples all three at the start and the end of the window.

use std::io;

use serde::Serialize;

/// A process's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProcessSample {
    /// User plus system CPU time since the process started, in seconds.
    pub cpu_seconds: f64,
    /// Resident memory now, in bytes.
    pub rss_bytes: Option<u64>,
    /// Peak resident memory since the process started, in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Threads now.
    pub threads: Option<u64>,
}

/// Which process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid {
    /// This process (`/proc/self`).
    Current,
    Id(u32),
}

impl Pid {
    fn dir(self) -> String {
        match self {
            Pid::Current => "/proc/self".into(),
            Pid::Id(pid) => format!("/proc/{pid}"),
        }
    }
}

/// Read a process's CPU time and memory.
pub fn sample(pid: Pid) -> io::Result<ProcessSample> {
    let dir = pid.dir();
    let stat = std::fs::read_to_string(format!("{dir}/stat"))?;
    let ticks = cpu_ticks(&stat).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{dir}/stat has no utime and stime"),
        )
    })?;
    // Memory is a bonus: a kernel without these lines still gives CPU.
    let status = std::fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
    Ok(ProcessSample {
        cpu_seconds: ticks as f64 / clock_ticks_per_second() as f64,
        rss_bytes: status_kib(&status, "VmRSS:").map(|k| k * 1024),
        peak_rss_bytes: status_kib(&status, "VmHWM:").map(|k| k * 1024),
        threads: status_kib(&status, "Threads:"),
    })
}

/// The whole machine's CPU time since boot, in seconds summed over cores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MachineSample {
    /// Time not idle (user, nice, system, irq, softirq, steal).
    pub busy_seconds: f64,
    /// All time, idle and iowait included.
    pub total_seconds: f64,
}

/// Read the machine's CPU time from `/proc/stat`.
pub fn machine() -> io::Result<MachineSample> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let (busy, total) = machine_ticks(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "/proc/stat has no cpu line"))?;
    let hz = clock_ticks_per_second() as f64;
    Ok(MachineSample {
        busy_seconds: busy as f64 / hz,
        total_seconds: total as f64 / hz,
    })
}

/// (busy, total) ticks from the first line of `/proc/stat`: `cpu user nice
/// system idle iowait irq softirq steal guest guest_nice`. Guest time is
/// already counted in user and nice.
fn machine_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 5 {
        return None;
    }
    let total: u64 = fields.iter().sum();
    let idle = fields[3] + fields[4];
    Some((total - idle, total))
}

/// `utime + stime` from the text of `/proc/<pid>/stat`. The second field,
/// the command name, is in parentheses and may itself hold spaces and
/// parentheses, so the fields are counted from the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace();
    // Fields 3 (state) … 13 come first: skip 11, then utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The number after `key` in `/proc/<pid>/status` (kB for the Vm lines).
fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `sysconf(_SC_CLK_TCK)`: the unit of `/proc/<pid>/stat`'s CPU times
/// (100 on every common Linux configuration, which is the fallback).
fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a configuration value; it has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        // A name with spaces and a parenthesis, as a thread can be called.
        let stat = "4242 (salon (w) 1) S 1 4242 4242 0 -1 4194560 1041 0 0 0 \
                    250 75 0 0 20 0 9 0 123456 1000000 2000 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(325));
        assert_eq!(cpu_ticks("4242 (salon"), None);
        assert_eq!(cpu_ticks("4242 (x) S 1 2"), None);
    }

    #[test]
    fn status_lines_are_read_in_kib() {
        let status = "Name:\tsalon\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t9\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(20480));
        assert_eq!(status_kib(status, "VmRSS:"), Some(10240));
        assert_eq!(status_kib(status, "Threads:"), Some(9));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn the_machine_line_adds_up() {
        let stat = "cpu  100 5 50 1000 20 1 2 3 7 0\ncpu0 50 2 25 500 10 0 1 1 0 0\n";
        assert_eq!(machine_ticks(stat), Some((161, 1181)));
        assert_eq!(machine_ticks("intr 1 2 3\n"), None);
        let m = machine().unwrap();
        assert!(m.total_seconds >= m.busy_seconds);
    }

    #[test]
    fn this_process_can_be_read() {
        let s = sample(Pid::Current).unwrap();
        assert!(s.cpu_seconds >= 0.0);
        assert!(s.peak_rss_bytes.unwrap_or(0) >= s.rss_bytes.unwrap_or(0));
        assert!(sample(Pid::Id(u32::MAX)).is_err());
    }
}
