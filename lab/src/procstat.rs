//! CPU and memory of processes and of the host, read from `/proc`.
//!
//! A [`Sampler`] takes a reading at the start of a load step and another at
//! its end; CPU% is the CPU time used in between divided by the wall time
//! (100% = one core busy), memory is the resident set at the end and its peak.
//! Two readings per step are enough and cost nothing during the step.

use std::time::Instant;

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// Usage of one process over a step.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ProcUsage {
    /// Human name ("replica 1", "balancer", "loadgen (lab)").
    pub name: String,
    /// Its pid.
    pub pid: u32,
    /// CPU used, in percent of one core.
    pub cpu_percent: f64,
    /// Resident memory at the end of the step, MiB.
    pub rss_mib: f64,
    /// Peak resident memory since the process started, MiB.
    pub peak_rss_mib: f64,
}

/// Usage of the whole machine over a step.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct HostUsage {
    /// Busy time of all cores, percent of all cores (100 = every core busy).
    pub cpu_percent: f64,
    /// Number of cores.
    pub cores: usize,
    /// Time the hypervisor gave this machine's CPUs to other guests
    /// (`steal` in `/proc/stat`), percent of all cores' time: on a shared
    /// virtual machine the neighbours move the figures from run to run. 0 on
    /// bare metal, and in reports written before it was kept.
    #[serde(default)]
    pub steal_percent: f64,
}

/// Cumulative ticks of all cores from `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostTicks {
    /// Not idle (steal included: time this machine wanted and did not get).
    pub busy: u64,
    /// All ticks.
    pub total: u64,
    /// Given to other guests by the hypervisor.
    pub steal: u64,
}

/// Cumulative user+system CPU ticks of `pid` (all threads).
pub fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&stat)
}

fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name is in parentheses and may contain spaces: start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `(VmRSS, VmHWM)` of `pid` in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_memory(&status)
}

fn parse_status_memory(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let rss = field("VmRSS:")?;
    Some((rss, field("VmHWM:").unwrap_or(rss)))
}

/// Ticks of all cores from `/proc/stat`.
pub fn host_ticks() -> Option<HostTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_host_ticks(&stat)
}

fn parse_host_ticks(stat: &str) -> Option<HostTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest is already in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some(HostTicks {
        busy: total - idle,
        total,
        steal: v.get(7).copied().unwrap_or(0),
    })
}

/// Readings taken at the start of a step.
#[derive(Debug)]
pub struct Sampler {
    /// `(name, pid, ticks at start)`.
    procs: Vec<(String, u32, Option<u64>)>,
    /// Host ticks at start.
    host: Option<HostTicks>,
    /// Wall clock at start.
    t0: Instant,
}

impl Sampler {
    /// Takes the first reading of `procs` (name, pid) and of the host.
    pub fn start(procs: &[(String, u32)]) -> Sampler {
        Sampler {
            procs: procs
                .iter()
                .map(|(n, p)| (n.clone(), *p, process_ticks(*p)))
                .collect(),
            host: host_ticks(),
            t0: Instant::now(),
        }
    }

    /// Takes the second reading and returns the usage in between.
    pub fn finish(&self) -> (Vec<ProcUsage>, HostUsage) {
        let secs = self.t0.elapsed().as_secs_f64().max(1e-3);
        let procs = self
            .procs
            .iter()
            .map(|(name, pid, t0)| {
                let cpu = match (t0, process_ticks(*pid)) {
                    (Some(a), Some(b)) => {
                        b.saturating_sub(*a) as f64 / TICKS_PER_SEC / secs * 100.0
                    }
                    _ => 0.0,
                };
                let (rss, hwm) = memory_kib(*pid).unwrap_or((0, 0));
                ProcUsage {
                    name: name.clone(),
                    pid: *pid,
                    cpu_percent: cpu,
                    rss_mib: rss as f64 / 1024.0,
                    peak_rss_mib: hwm as f64 / 1024.0,
                }
            })
            .collect();
        let cores = host_cores();
        let host = match (self.host, host_ticks()) {
            (Some(a), Some(b)) if b.total > a.total => {
                let share = |x: u64, y: u64| {
                    y.saturating_sub(x) as f64 / (b.total - a.total) as f64 * 100.0
                };
                HostUsage {
                    cpu_percent: share(a.busy, b.busy),
                    cores,
                    steal_percent: share(a.steal, b.steal),
                }
            }
            _ => HostUsage {
                cores,
                ..HostUsage::default()
            },
        };
        (procs, host)
    }
}

/// CPUs of the machine (the `cpuN` lines of `/proc/stat`), whatever this
/// process is pinned to: `available_parallelism` counts only the CPUs of
/// our own affinity mask, which [`crate::affinity`] narrows.
pub fn host_cores() -> usize {
    let counted = std::fs::read_to_string("/proc/stat").map_or(0, |stat| {
        stat.lines()
            .filter(|l| {
                l.strip_prefix("cpu")
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .count()
    });
    if counted > 0 {
        counted
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_cores_counts_the_machine_not_the_affinity_mask() {
        let mask = std::thread::available_parallelism().map_or(1, |n| n.get());
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
        assert!(host_cores() >= mask, "{} < {mask}", host_cores());
        // "0-1", "0-3,5": the highest number + 1 bounds the count.
        if let Some(max) = online
            .trim()
            .split([',', '-'])
            .filter_map(|n| n.parse::<usize>().ok())
            .max()
        {
            assert!(host_cores() <= max + 1, "{} > {online}", host_cores());
        }
    }

    #[test]
    fn stat_with_spaces_in_command_name() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 100 1000 200";
        assert_eq!(parse_stat_ticks(stat), Some(300));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn status_memory_and_host_ticks() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_status_memory(status), Some((1024, 2048)));
        assert_eq!(parse_status_memory("Name: kernel thread\n"), None);
        let stat = "cpu  10 0 10 70 10 0 0 0 0 0\ncpu0 1 2 3 4\n";
        let ticks = |busy, total, steal| Some(HostTicks { busy, total, steal });
        assert_eq!(parse_host_ticks(stat), ticks(20, 100, 0));
        // user nice system idle iowait irq softirq steal
        let stat = "cpu  10 0 10 60 10 0 0 10 0 0\n";
        assert_eq!(parse_host_ticks(stat), ticks(30, 100, 10));
        assert_eq!(parse_host_ticks("cpu  1 2\n"), None);
    }

    #[test]
    fn measures_a_busy_thread_of_this_process() {
        let me = std::process::id();
        let s = Sampler::start(&[("me".into(), me)]);
        let until = Instant::now() + std::time::Duration::from_millis(300);
        let mut x = 0u64;
        while Instant::now() < until {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let (procs, host) = s.finish();
        assert!(procs[0].cpu_percent > 30.0, "{procs:?}");
        assert!(procs[0].rss_mib > 0.0);
        assert!(host.cores >= 1);
    }
}
