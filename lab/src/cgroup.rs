//! CPU budgets per replica through Linux cgroups.
//!
//! On one machine the replicas share the same cores, so a balancer alone adds
//! no capacity. To model N separate servers the lab gives each replica a CPU
//! quota in a lab-owned sub-group: cgroup v2 `cpu.max` or cgroup v1
//! `cpu.cfs_quota_us`. [`CpuGroups::create`] finds a writable hierarchy (or
//! says precisely why none is), [`CpuGroups::add`] moves a process into its
//! own quota group, and dropping the [`CpuGroups`] removes the folders again.

use std::path::{Path, PathBuf};

use crate::affinity::{self, Placement};

/// The CFS period the lab uses: 10 ms, a tenth of the kernel's default.
/// A budget of 0.18 core over 100 ms lets a replica run 18 ms and then
/// stalls everything it holds for 82 ms, so a 20 ms login spans two periods
/// and its latency turns on where in a period it arrived; over 10 ms the
/// same budget slows the replica evenly, as a smaller CPU would.
pub const PERIOD_US: u64 = 10_000;

/// The period for a budget of `cores`: [`PERIOD_US`], or longer for a
/// budget under 0.1 of a core, whose quota would otherwise fall under the
/// kernel's 1 ms minimum (0.01 of a core gets 1 ms every 100 ms).
fn period_for(cores: f64) -> u64 {
    ((1000.0 / cores).ceil() as u64).clamp(PERIOD_US, 1_000_000)
}

/// Which cgroup interface is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Version {
    /// cgroup v1, `cpu` controller: `cpu.cfs_quota_us` / `cpu.cfs_period_us`.
    V1,
    /// cgroup v2 unified hierarchy: `cpu.max`.
    V2,
}

/// Throttling counters of one group (cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Throttle {
    /// Scheduler periods in which the group was runnable.
    pub periods: u64,
    /// Periods in which it hit its quota.
    pub throttled: u64,
}

/// The lab's own sub-group with one quota group per replica.
#[derive(Debug)]
pub struct CpuGroups {
    /// `…/lab-<pid>`, removed on drop.
    base: PathBuf,
    /// Interface in use.
    version: Version,
    /// Quota per member group, in cores.
    cores: f64,
    /// Member groups created so far (removed on drop, before `base`).
    members: std::sync::Mutex<Vec<PathBuf>>,
    /// Where members run, when kept off the tools' CPUs ([`crate::affinity`]).
    placement: Option<Placement>,
}

impl CpuGroups {
    /// Finds a writable cgroup hierarchy with the CPU controller and creates
    /// the lab's sub-group there. The error explains why it is not possible.
    pub fn create(cores: f64) -> Result<CpuGroups, String> {
        let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| {
            format!("cannot read /proc/self/cgroup ({e}): not Linux, or /proc is not mounted")
        })?;
        let mut reasons = Vec::new();
        match Self::try_v1(&own, cores) {
            Ok(g) => return Ok(g),
            Err(e) => reasons.push(format!("cgroup v1: {e}")),
        }
        match Self::try_v2(&own, cores) {
            Ok(g) => return Ok(g),
            Err(e) => reasons.push(format!("cgroup v2: {e}")),
        }
        Err(reasons.join("; "))
    }

    fn try_v1(own: &str, cores: f64) -> Result<CpuGroups, String> {
        // A line such as `4:cpu,cpuacct:/some/path` or `1:cpu:/`.
        let rel = own
            .lines()
            .filter_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
                ctrl.split(',')
                    .any(|c| c == "cpu")
                    .then(|| path.to_string())
            })
            .next()
            .ok_or("no cpu controller in /proc/self/cgroup")?;
        let mount = ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.join("cpu.cfs_quota_us").exists())
            .ok_or("no cpu hierarchy mounted under /sys/fs/cgroup")?;
        let parent = mount.join(rel.trim_start_matches('/'));
        let parent = if parent.join("cpu.cfs_quota_us").exists() {
            parent
        } else {
            mount
        };
        Self::make_base(&parent, Version::V1, cores)
    }

    fn try_v2(own: &str, cores: f64) -> Result<CpuGroups, String> {
        let rel = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or("no unified hierarchy entry in /proc/self/cgroup")?;
        let mount = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.join("cgroup.controllers").exists())
            .ok_or("no cgroup2 file system under /sys/fs/cgroup")?;
        let parent = mount.join(rel.trim_start_matches('/'));
        let controllers =
            std::fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
        if !controllers.split_whitespace().any(|c| c == "cpu") {
            return Err(format!(
                "the cpu controller is not delegated to {} (controllers: `{}`)",
                parent.display(),
                controllers.trim()
            ));
        }
        // Children of `parent` only get cpu.max if `parent` enables it for its subtree.
        std::fs::write(parent.join("cgroup.subtree_control"), "+cpu").map_err(|e| {
            format!(
                "cannot enable +cpu in {}/cgroup.subtree_control: {e}",
                parent.display()
            )
        })?;
        let g = Self::make_base(&parent, Version::V2, cores)?;
        std::fs::write(g.base.join("cgroup.subtree_control"), "+cpu").map_err(|e| {
            format!(
                "cannot enable +cpu in {}/cgroup.subtree_control: {e}",
                g.base.display()
            )
        })?;
        Ok(g)
    }

    fn make_base(parent: &Path, version: Version, cores: f64) -> Result<CpuGroups, String> {
        remove_stale(parent);
        let base = parent.join(format!("lab-{}", std::process::id()));
        std::fs::create_dir_all(&base).map_err(|e| {
            format!(
                "cannot create {}: {e} (run as root, or delegate a cgroup to your user)",
                base.display()
            )
        })?;
        Ok(CpuGroups {
            base,
            version,
            cores,
            members: std::sync::Mutex::new(Vec::new()),
            placement: None,
        })
    }

    /// The interface in use.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The lab's base folder (for messages).
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// From now on, members are also moved to `placement.replicas` (this
    /// process should already be on `placement.tools`).
    pub fn keep_apart(&mut self, placement: Placement) {
        self.placement = Some(placement);
    }

    /// Whether members are kept off the tools' CPUs.
    pub fn keeps_apart(&self) -> bool {
        self.placement.is_some()
    }

    /// Creates the member group `name` with the quota and moves `pid` into it
    /// (and onto the replicas' CPUs, when kept apart).
    pub fn add(&self, name: &str, pid: u32) -> Result<PathBuf, String> {
        let dir = self.base.join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if let Ok(mut m) = self.members.lock() {
            m.push(dir.clone());
        }
        let period = period_for(self.cores);
        let quota = ((self.cores * period as f64).round() as u64).max(1000);
        let write = |file: &str, value: String| {
            std::fs::write(dir.join(file), &value).map_err(|e| {
                format!(
                    "cannot write `{value}` to {}: {e}",
                    dir.join(file).display()
                )
            })
        };
        match self.version {
            Version::V1 => {
                write("cpu.cfs_period_us", period.to_string())?;
                write("cpu.cfs_quota_us", quota.to_string())?;
            }
            Version::V2 => write("cpu.max", format!("{quota} {period}"))?,
        }
        write("cgroup.procs", pid.to_string())?;
        if let Some(p) = &self.placement {
            affinity::pin(Some(pid), &p.replicas)?;
        }
        Ok(dir)
    }

    /// Cumulative throttling counters of member `name`.
    pub fn throttle(&self, name: &str) -> Option<Throttle> {
        let text = std::fs::read_to_string(self.base.join(name).join("cpu.stat")).ok()?;
        let mut t = Throttle::default();
        for line in text.lines() {
            let mut it = line.split_whitespace();
            match (it.next(), it.next().and_then(|v| v.parse().ok())) {
                (Some("nr_periods"), Some(v)) => t.periods = v,
                (Some("nr_throttled"), Some(v)) => t.throttled = v,
                _ => {}
            }
        }
        Some(t)
    }
}

impl Drop for CpuGroups {
    fn drop(&mut self) {
        // A cgroup folder can only be removed once its processes have exited;
        // the guards of the processes are dropped first, give them a moment.
        let members = self.members.lock().map(|m| m.clone()).unwrap_or_default();
        for dir in members {
            for _ in 0..50 {
                if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_dir(&self.base);
    }
}

/// Removes `lab-<pid>` groups left by lab processes that no longer exist.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("lab-")
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(subs) = std::fs::read_dir(e.path()) {
            for s in subs.flatten() {
                if s.path().is_dir() {
                    let _ = std::fs::remove_dir(s.path());
                }
            }
        }
        let _ = std::fs::remove_dir(e.path());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_budgets_get_a_longer_period_not_a_larger_quota() {
        assert_eq!(period_for(0.25), PERIOD_US);
        assert_eq!(period_for(0.1), PERIOD_US);
        // 0.05 of a core: 1 ms every 20 ms, not the kernel's minimum quota
        // over 10 ms (which would be 0.1 of a core).
        assert_eq!(period_for(0.05), 20_000);
        assert_eq!(period_for(0.01), 100_000);
        assert_eq!(period_for(4.0), PERIOD_US);
    }

    #[test]
    fn creates_quota_groups_where_writable_and_cleans_up() {
        // This is environment-dependent: where no cgroup is writable the error
        // must say why; where one is, the quota must be what we asked for.
        match CpuGroups::create(0.25) {
            Err(why) => assert!(why.contains("cgroup"), "{why}"),
            Ok(g) => {
                let base = g.base().to_path_buf();
                let mut child = std::process::Command::new("sleep")
                    .arg("5")
                    .spawn()
                    .unwrap();
                let dir = g.add("probe", child.id()).unwrap();
                match g.version() {
                    Version::V1 => {
                        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
                        assert_eq!(read("cpu.cfs_quota_us").trim(), "2500");
                        assert_eq!(read("cpu.cfs_period_us").trim(), "10000");
                    }
                    Version::V2 => assert_eq!(
                        std::fs::read_to_string(dir.join("cpu.max")).unwrap().trim(),
                        "2500 10000"
                    ),
                }
                assert!(std::fs::read_to_string(dir.join("cgroup.procs"))
                    .unwrap()
                    .contains(&child.id().to_string()));
                assert!(g.throttle("probe").is_some());
                child.kill().unwrap();
                child.wait().unwrap();
                drop(g);
                assert!(!base.exists(), "{} left behind", base.display());
            }
        }
    }
}
