//! Reading `/proc` and the server's `postmaster.pid`: which processes belong
//! to a cluster (the lab reports their CPU and memory), whether one is still
//! alive, and whether the server says it is ready.

use std::path::Path;

/// The pids whose parent is `pid`, from `/proc/<pid>/stat`.
pub(crate) fn children_of(pid: u32) -> std::io::Result<Vec<u32>> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(child) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may exit between the listing and the read: skip it.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        if parse_stat(&stat).is_some_and(|(_, ppid)| ppid == pid) {
            children.push(child);
        }
    }
    children.sort_unstable();
    Ok(children)
}

/// State letter and parent pid from a `/proc/<pid>/stat` line. The command
/// name in parentheses may itself hold spaces and `)`, so fields are counted
/// from its last `)`.
pub(crate) fn parse_stat(stat: &str) -> Option<(char, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.next()?.parse().ok()?))
}

/// True while `pid` is a live (not zombie) process whose command is `postgres`.
pub(crate) fn is_live_postgres(pid: u32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    comm.trim_end() == "postgres"
        && parse_stat(&stat).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// What `postmaster.pid` says: the server's pid and whether its status line
/// (the eighth, as `pg_ctl -w` reads it) is `ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PidFile {
    pub(crate) pid: u32,
    pub(crate) ready: bool,
}

pub(crate) fn read_pid_file(data_dir: &Path) -> Option<PidFile> {
    parse_pid_file(&std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?)
}

fn parse_pid_file(text: &str) -> Option<PidFile> {
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let ready = lines.nth(6).is_some_and(|status| status.trim() == "ready");
    Some(PidFile { pid, ready })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        assert_eq!(parse_stat("42 (postgres) S 41 42 42 0"), Some(('S', 41)));
        assert_eq!(parse_stat("7 (a) b) (c) Z 1 7"), Some(('Z', 1)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn pid_file_status_line() {
        let ready = "28672\n/tmp/d\n1796290919\n54329\n\n127.0.0.1\n 10010851 4\nready   \n";
        assert_eq!(
            parse_pid_file(ready),
            Some(PidFile {
                pid: 28672,
                ready: true
            })
        );
        let starting = ready.replace("ready   ", "starting");
        assert_eq!(
            parse_pid_file(&starting),
            Some(PidFile {
                pid: 28672,
                ready: false
            })
        );
        assert_eq!(
            parse_pid_file("28672\n/tmp/d\n"),
            Some(PidFile {
                pid: 28672,
                ready: false
            })
        );
        assert_eq!(parse_pid_file(""), None);
    }

    #[test]
    fn this_process_is_found_among_its_parents_children() {
        let me = std::process::id();
        let stat = std::fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
        let (_, parent) = parse_stat(&stat).unwrap();
        assert!(children_of(parent).unwrap().contains(&me));
        assert!(!is_live_postgres(me));
    }
}
