//! Keeps the load generator and the balancer off the replicas' CPUs.
//!
//! A CPU budget (see [`crate::cgroup`]) caps how much CPU time each replica
//! gets, but not *where*: with everything free to run anywhere, the lab's
//! own load generator and the balancer land on the same cores as the
//! replicas, take turns with them inside their CFS periods, and the capacity
//! measured moves with whichever side the scheduler favoured that run. So,
//! when a budget is in force, the CPUs this process may use are split in
//! two: the first half (at least one) for the lab itself and everything it
//! starts (the load generator runs in-process; the balancer inherits the
//! mask at `fork`), the rest for the replicas, which are moved there once
//! they have started. On this project's 2-core machine that is CPU 0 for
//! the tools and CPU 1 for the replicas.
//!
//! The budgets must fit there: `lab compare --replicas 4` runs five
//! replicas in the same windows, and five of 0.25 core on one CPU got 20%
//! each and were never throttled: a full CPU shared five ways, not the
//! budget, set their speed, and one side could take CPU from the other.
//! So [`Placement::fit`] lowers the budget to what the replicas' CPUs can
//! give all of them at once (0.18 each there), and the report says so.
//! `--no-pin` turns all of it off, to measure what it changes.

use std::path::Path;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Share of each replica CPU the budgets may fill: a tenth is left for the
/// kernel's own work there (loopback TCP is processed on the CPUs of the
/// processes that send it).
const REPLICA_CPU_ROOM: f64 = 0.9;

/// Which CPUs the tools and the replicas run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The lab process (load generator) and the balancer.
    pub tools: Vec<usize>,
    /// Every replica.
    pub replicas: Vec<usize>,
}

impl Placement {
    /// Splits `allowed` (ascending CPU numbers): the first half, at least
    /// one, for the tools; `None` with fewer than two CPUs.
    pub fn split(allowed: &[usize]) -> Option<Placement> {
        if allowed.len() < 2 {
            return None;
        }
        let tools = allowed.len().div_ceil(2).min(allowed.len() - 1);
        Some(Placement {
            tools: allowed[..tools].to_vec(),
            replicas: allowed[tools..].to_vec(),
        })
    }

    /// The split of the CPUs this process may use now.
    pub fn of_this_machine() -> Option<Placement> {
        let set = sched_getaffinity(Pid::from_raw(0)).ok()?;
        let allowed: Vec<usize> = (0..CpuSet::count())
            .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
            .collect();
        Placement::split(&allowed)
    }

    /// The budget of each of `replicas` running at once: `asked`, or less
    /// where they would not all get it on the replicas' CPUs (rounded down
    /// to a thousandth of a core).
    pub fn fit(&self, asked: f64, replicas: usize) -> f64 {
        let each = self.room_cores() / replicas.max(1) as f64;
        if asked <= each {
            asked
        } else {
            (each * 1000.0).floor() / 1000.0
        }
    }

    /// The budget the replicas' CPUs hold, in cores.
    fn room_cores(&self) -> f64 {
        REPLICA_CPU_ROOM * self.replicas.len() as f64
    }

    /// The budget the replicas' CPUs hold, in words: "0.9 of a core".
    pub fn room(&self) -> String {
        format!("{} of a core", self.room_cores())
    }

    /// "CPU 1", "CPUs 2,3".
    pub fn replica_cpus(&self) -> String {
        cpus(&self.replicas)
    }

    /// For the report: "the load generator and the balancer on CPU 0, the
    /// replicas on CPU 1".
    pub fn describe(&self) -> String {
        format!(
            "the load generator and the balancer on {}, the replicas on {}",
            cpus(&self.tools),
            cpus(&self.replicas)
        )
    }
}

fn cpus(list: &[usize]) -> String {
    let names: Vec<String> = list.iter().map(usize::to_string).collect();
    match names.len() {
        1 => format!("CPU {}", names[0]),
        _ => format!("CPUs {}", names.join(",")),
    }
}

/// Restricts every thread of process `pid` (`None`: this process) to
/// `cpus`. Threads started later inherit the mask of the thread that starts
/// them; the thread list is walked twice so one started during the first
/// walk is caught by the second.
pub fn pin(pid: Option<u32>, cpus: &[usize]) -> Result<(), String> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu).map_err(|e| format!("CPU {cpu}: {e}"))?;
    }
    let tasks = match pid {
        Some(pid) => Path::new("/proc").join(pid.to_string()).join("task"),
        None => Path::new("/proc/self/task").to_path_buf(),
    };
    for _ in 0..2 {
        let entries = std::fs::read_dir(&tasks)
            .map_err(|e| format!("cannot list {}: {e}", tasks.display()))?;
        for tid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()) {
            // A thread that ended meanwhile is no error.
            match sched_setaffinity(Pid::from_raw(tid), &set) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(format!("cannot pin thread {tid} to {cpus:?}: {e}")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cpus_one_each_and_one_cpu_none() {
        let p = Placement::split(&[0, 1]).unwrap();
        assert_eq!((p.tools, p.replicas), (vec![0], vec![1]));
        assert_eq!(Placement::split(&[3]), None);
        assert_eq!(Placement::split(&[]), None);
        let p = Placement::split(&[0, 1, 2, 3, 4]).unwrap();
        assert_eq!((p.tools, p.replicas), (vec![0, 1, 2], vec![3, 4]));
        assert_eq!(
            Placement::split(&[2, 5]).unwrap().describe(),
            "the load generator and the balancer on CPU 2, the replicas on CPU 5"
        );
    }

    #[test]
    fn budgets_are_lowered_to_what_the_replica_cpus_hold() {
        let p = Placement::split(&[0, 1]).unwrap();
        // lab compare --replicas 4: five at once, 0.9 of CPU 1.
        assert_eq!(p.fit(0.25, 5), 0.18);
        assert_eq!(p.fit(0.25, 3), 0.25, "three of 0.25 fit");
        // lab scale 1,2,4,8 at 0.125: eight do not quite fit.
        assert_eq!(p.fit(0.125, 8), 0.112);
        assert_eq!(p.room(), "0.9 of a core");
        let p = Placement::split(&[0, 1, 2, 3]).unwrap();
        assert_eq!(p.fit(0.25, 5), 0.25, "two CPUs hold 1.8 cores");
        assert_eq!(p.replica_cpus(), "CPUs 2,3");
    }

    #[test]
    fn pinning_a_child_moves_all_its_threads() {
        let Some(placement) = Placement::of_this_machine() else {
            eprintln!("skipped: one CPU only");
            return;
        };
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let result = pin(Some(child.id()), &placement.replicas);
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        result.unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list:"))
            .unwrap();
        let want = placement
            .replicas
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",");
        // The kernel writes ranges ("1-3"); one CPU or a comma list matches.
        let got = line.split_whitespace().nth(1).unwrap();
        assert!(
            got == want || placement.replicas.len() > 2,
            "{line} (wanted {want})"
        );
        assert!(pin(Some(u32::MAX / 2), &[0]).is_err(), "no such process");
    }
}
