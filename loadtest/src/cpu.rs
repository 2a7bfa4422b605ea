//! CPU time of a process from `/proc/<pid>/stat` (utime + stime), for "CPU per request" figures.

use std::time::Instant;

use serde::Serialize;

use crate::stats::round_to;

/// CPU a process used during the measured phase.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CpuUse {
    /// The name given with `--watch-pid NAME=PID` (`loadtest` for the tool itself).
    pub name: String,
    /// The process measured.
    pub pid: u32,
    /// CPU time (user + system) during the phase, milliseconds.
    pub cpu_ms: f64,
    /// CPU time divided by the requests completed in the phase.
    pub cpu_us_per_request: f64,
    /// CPU time divided by wall time: 1.0 is one core fully busy.
    pub cores_busy: f64,
}

/// utime + stime in clock ticks, from the text of `/proc/<pid>/stat`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_s() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

pub fn read_ticks(pid: u32) -> Result<u64, String> {
    let path = if pid == 0 { "/proc/self/stat".to_string() } else { format!("/proc/{pid}/stat") };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_stat_ticks(&text).ok_or_else(|| format!("{path}: unreadable"))
}

/// A running measurement of one process (`pid` 0 = this process).
pub struct CpuWatch {
    /// The name the report gives the process.
    pub name: String,
    /// The process (0 = this one).
    pub pid: u32,
    /// Its utime + stime at the start, clock ticks.
    start_ticks: u64,
    /// When the measurement started, for the wall time.
    start: Instant,
}

impl CpuWatch {
    pub fn start(name: &str, pid: u32) -> Result<CpuWatch, String> {
        Ok(CpuWatch { name: name.to_string(), pid, start_ticks: read_ticks(pid)?, start: Instant::now() })
    }

    pub fn finish(&self, requests: u64) -> Result<CpuUse, String> {
        let ticks = read_ticks(self.pid)?.saturating_sub(self.start_ticks);
        let cpu_ms = ticks as f64 * 1000.0 / clock_ticks_per_s();
        let wall_ms = self.start.elapsed().as_secs_f64() * 1000.0;
        Ok(CpuUse {
            name: self.name.clone(),
            pid: if self.pid == 0 { std::process::id() } else { self.pid },
            cpu_ms,
            cpu_us_per_request: if requests == 0 { 0.0 } else { round_to(cpu_ms * 1000.0 / requests as f64, 1) },
            cores_busy: if wall_ms > 0.0 { round_to(cpu_ms / wall_ms, 2) } else { 0.0 },
        })
    }
}

/// What the whole machine did during the measured phase (from the `cpu` line of `/proc/stat`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MachineCpu {
    /// Cores busy on average (1.0 = one core fully busy).
    pub cores_busy: f64,
    /// Busy cores not accounted for by the watched processes (including this one): other work on the machine
    /// that competed with the measurement.
    pub others_cores_busy: f64,
    /// Cores stolen by the hypervisor.
    pub steal_cores: f64,
}

/// The whole machine's CPU counters, in clock ticks since boot (the `cpu` line of `/proc/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineTicks {
    /// Ticks not idle and not waiting for I/O: what was competing for (or used by) the cores.
    pub busy: u64,
    /// Ticks the hypervisor gave to other guests while this one wanted to run.
    pub steal: u64,
    /// All ticks of all cores.
    pub total: u64,
}

/// The machine's busy, steal and total ticks from the text of `/proc/stat`.
pub fn parse_proc_stat(stat: &str) -> Option<MachineTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).take(8).map(|x| x.parse().ok()).collect::<Option<_>>()?;
    if v.len() < 8 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v[4];
    Some(MachineTicks { busy: total - idle, steal: v[7], total })
}

/// The machine's counters now.
fn read_machine_ticks() -> Result<MachineTicks, String> {
    let text = std::fs::read_to_string("/proc/stat").map_err(|e| format!("/proc/stat: {e}"))?;
    parse_proc_stat(&text).ok_or_else(|| "/proc/stat: unreadable".to_string())
}

/// A running measurement of the whole machine.
pub struct MachineWatch {
    /// The counters at the start.
    start: MachineTicks,
    /// When the measurement started, for the wall time.
    started: Instant,
}

impl MachineWatch {
    pub fn start() -> Result<MachineWatch, String> {
        Ok(MachineWatch { start: read_machine_ticks()?, started: Instant::now() })
    }

    /// `processes`: the watched processes' figures over the same phase.
    pub fn finish(&self, processes: &[CpuUse]) -> Result<MachineCpu, String> {
        let now = read_machine_ticks()?;
        let wall_s = self.started.elapsed().as_secs_f64().max(1e-3);
        let ticks = clock_ticks_per_s();
        let cores_busy = now.busy.saturating_sub(self.start.busy) as f64 / ticks / wall_s;
        let ours: f64 = processes.iter().map(|p| p.cores_busy).sum();
        Ok(MachineCpu {
            cores_busy: round_to(cores_busy, 2),
            others_cores_busy: round_to((cores_busy - ours).max(0.0), 2),
            steal_cores: round_to(now.steal.saturating_sub(self.start.steal) as f64 / ticks / wall_s, 2),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime() {
        let stat = "1234 (settle gate) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(325));
        assert!(read_ticks(0).is_ok());
    }

    #[test]
    fn parses_the_machine_line() {
        let stat = "cpu  100 5 50 1000 20 1 2 7 0 0\ncpu0 50 2 25 500 10 0 1 3 0 0\n";
        // busy = total - idle - iowait = 1185 - 1020
        assert_eq!(parse_proc_stat(stat), Some(MachineTicks { busy: 165, steal: 7, total: 1185 }));
        assert!(MachineWatch::start().unwrap().finish(&[]).is_ok());
    }
}
