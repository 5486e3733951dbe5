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
//! they have started.
//!
//! Each replica goes to one CPU where its budget still fits
//! ([`Placement::cpu_for`]): a budget only models a separate server if the
//! replica can get all of it. The replicas' CPUs come first, up to
//! [`REPLICA_CPU_ROOM`] of budget each; then the tools' CPUs, up to
//! [`TOOLS_CPU_ROOM`]. On this project's 2-core machine `lab compare`
//! runs five replicas of 0.25 core in the same windows (1.25 cores): all on
//! CPU 1 they got 20% each, never throttled (a full CPU shared five ways,
//! not the budget, set their speed, and coupled the two sides). Placed, the
//! single replica and r1, r2 run on CPU 1, r3 and r4 on CPU 0 beside the
//! tools. `--no-pin` turns all of it off, to measure what it changes.

use std::path::Path;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Budget (cores) placed on one of the replicas' CPUs at most: a tenth is
/// left for the kernel's own work there (loopback TCP is processed on the
/// CPUs of the processes that send it).
pub const REPLICA_CPU_ROOM: f64 = 0.9;
/// Budget placed on one of the tools' CPUs at most: the load generator and
/// the balancer keep the other half (together about a third of a core at
/// the default load).
pub const TOOLS_CPU_ROOM: f64 = 0.5;

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

    /// The CPU for a replica of `budget` cores, given the budget already
    /// placed per CPU (`placed`, any order): the least loaded of the
    /// replicas' CPUs where it fits, else of the tools' CPUs; `None` where
    /// it fits nowhere.
    pub fn cpu_for(&self, budget: f64, placed: &[(usize, f64)]) -> Option<usize> {
        let on = |cpu: usize| {
            placed
                .iter()
                .filter(|(c, _)| *c == cpu)
                .map(|(_, b)| b)
                .sum::<f64>()
        };
        let fits = |cpus: &[usize], room: f64| {
            cpus.iter()
                .map(|&c| (c, on(c)))
                .filter(|(_, used)| used + budget <= room + 1e-9)
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(c, _)| c)
        };
        fits(&self.replicas, REPLICA_CPU_ROOM).or_else(|| fits(&self.tools, TOOLS_CPU_ROOM))
    }

    /// For the report: "the load generator and the balancer on CPU 0, the
    /// replicas on CPU 1".
    pub fn describe(&self) -> String {
        format!(
            "the load generator and the balancer on {}, the replicas on {} while their budgets fit there, then beside the tools",
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
            "the load generator and the balancer on CPU 2, the replicas on CPU 5 while their budgets fit there, then beside the tools"
        );
    }

    #[test]
    fn replicas_go_where_their_budget_fits() {
        let p = Placement::split(&[0, 1]).unwrap();
        let mut placed = Vec::new();
        let mut order = Vec::new();
        // lab compare --replicas 4: single, r1…r4 at 0.25 of a core.
        for _ in 0..5 {
            let cpu = p.cpu_for(0.25, &placed).unwrap();
            placed.push((cpu, 0.25));
            order.push(cpu);
        }
        assert_eq!(order, [1, 1, 1, 0, 0]);
        assert_eq!(p.cpu_for(0.25, &placed), None, "both CPUs are full");
        // lab scale --replicas 1,2,4,8: eight at 0.125 (1 core in all).
        let mut placed = Vec::new();
        for _ in 0..8 {
            let cpu = p.cpu_for(0.125, &placed).unwrap();
            placed.push((cpu, 0.125));
        }
        let on1 = placed.iter().filter(|(c, _)| *c == 1).count();
        assert_eq!(on1, 7, "{placed:?}");
        // Several replica CPUs: the least loaded first.
        let p = Placement::split(&[0, 1, 2, 3]).unwrap();
        assert_eq!(p.cpu_for(0.5, &[(2, 0.5)]), Some(3));
        assert_eq!(p.cpu_for(1.5, &[]), None, "a budget above a CPU fits nowhere");
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
