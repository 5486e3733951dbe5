//! The server settings and client-authentication rules written into a fresh
//! data folder, as text with no I/O so they can be read and tested here.
//!
//! They are written to `pgcluster.conf`, which `postgresql.conf` includes last,
//! so a person looking at the data folder sees exactly what was changed from
//! `initdb`'s defaults; `pg_hba.conf` is replaced whole.

/// The file, in the data folder, holding [`server_conf`]. Its presence also
/// marks a data folder as a throwaway cluster this crate made (and may replace).
pub(crate) const CONF_FILE: &str = "pgcluster.conf";

/// What varies between clusters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) max_connections: u32,
    pub(crate) shared_buffers_mb: u32,
}

/// Settings for a small box shared with the API replicas, the balancer and the
/// load generator:
///
/// - `listen_addresses = '127.0.0.1'` and no Unix socket: the cluster is reached
///   over loopback TCP only, never from another interface, and with no socket
///   file in `/var/run/postgresql` (root's, and shared by every cluster) to clash on.
/// - `max_connections` comes from the caller: replicas × their pool size, plus a
///   few for the lab's own tools. Each slot costs memory even when idle, so it
///   is not simply set high.
/// - `shared_buffers` is small (the default 128 MB times two test clusters,
///   next to the replicas, is memory the box needs elsewhere), and parallel
///   query is off: on two cores a parallel scan takes CPU from the replicas
///   whose capacity the lab is measuring.
/// - `fsync`, `synchronous_commit` and `full_page_writes` stay on, spelled out:
///   the lab compares stacks by what they can durably commit, and a database
///   that skips flushing would fake that number.
/// - Logs go to stderr, which the crate sends to `postgres.log` in the data
///   folder, so even a server that fails before its logging starts leaves its
///   reason there.
pub(crate) fn server_conf(s: &Settings) -> String {
    format!(
        "# Written by pgcluster for a throwaway cluster; see pgcluster/src/settings.rs for why.\n\
         listen_addresses = '127.0.0.1'\n\
         unix_socket_directories = ''\n\
         max_connections = {max_connections}\n\
         shared_buffers = '{shared_buffers_mb}MB'\n\
         max_parallel_workers_per_gather = 0\n\
         fsync = on\n\
         synchronous_commit = on\n\
         full_page_writes = on\n\
         password_encryption = 'scram-sha-256'\n\
         logging_collector = off\n\
         log_destination = 'stderr'\n\
         log_line_prefix = '%m [%p] '\n\
         log_timezone = 'UTC'\n\
         timezone = 'UTC'\n",
        max_connections = s.max_connections,
        shared_buffers_mb = s.shared_buffers_mb,
    )
}

/// Password (SCRAM) for every database and user, from 127.0.0.1 only: wrong
/// credentials are really refused, as they would be on a real server, and no
/// `trust` line lets a test pass that should not.
pub(crate) fn hba_conf() -> &'static str {
    "# Written by pgcluster: loopback TCP with a SCRAM password, nothing else.\n\
     # TYPE  DATABASE  USER  ADDRESS       METHOD\n\
     host    all       all   127.0.0.1/32  scram-sha-256\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_keep_the_server_on_loopback_and_durable() {
        let conf = server_conf(&Settings {
            max_connections: 42,
            shared_buffers_mb: 64,
        });
        for line in [
            "listen_addresses = '127.0.0.1'",
            "unix_socket_directories = ''",
            "max_connections = 42",
            "shared_buffers = '64MB'",
            "fsync = on",
            "synchronous_commit = on",
        ] {
            assert!(
                conf.lines().any(|l| l == line),
                "missing {line:?} in\n{conf}"
            );
        }
    }

    #[test]
    fn only_loopback_with_a_password_is_let_in() {
        let rules: Vec<&str> = hba_conf().lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(rules.len(), 1);
        assert!(rules[0].contains("127.0.0.1/32") && rules[0].ends_with("scram-sha-256"));
    }
}
