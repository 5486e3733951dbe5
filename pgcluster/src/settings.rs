//! The server settings and client-authentication rules written into a fresh
//! data folder, as text with no I/O so they can be read and tested here.
//!
//! They are written to `pgcluster.conf`, which `postgresql.conf` includes last,
//! so a person looking at the data folder sees exactly what was changed from
//! `initdb`'s defaults; `pg_hba.conf` is replaced whole.

use std::net::IpAddr;

/// The file, in the data folder, holding [`server_conf`]. Its presence also
/// marks a data folder as a throwaway cluster this crate made (and may replace).
pub(crate) const CONF_FILE: &str = "pgcluster.conf";

/// What varies between clusters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// The one address the server listens on.
    pub(crate) listen: IpAddr,
    /// Networks (`ADDR/LEN`, checked) let in besides the listen address.
    pub(crate) clients: Vec<String>,
    pub(crate) max_connections: u32,
    pub(crate) shared_buffers_mb: u32,
}

/// Settings for a small box shared with the API replicas, the balancer and the
/// load generator:
///
/// - `listen_addresses` is one address, `127.0.0.1` unless the caller names
///   another (the multi-host test's database namespace), and no Unix socket:
///   the cluster is reached over TCP on that address only, and with no socket
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
         listen_addresses = '{listen}'\n\
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
        listen = s.listen,
        max_connections = s.max_connections,
        shared_buffers_mb = s.shared_buffers_mb,
    )
}

/// Password (SCRAM) for every database and user, from the listen address
/// (127.0.0.1 by default) and the caller's client networks only: wrong
/// credentials are really refused, as they would be on a real server, and no
/// `trust` line lets a test pass that should not.
pub(crate) fn hba_conf(s: &Settings) -> String {
    let own = match s.listen {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    };
    let mut text = String::from(
        "# Written by pgcluster: TCP from the listed addresses with a SCRAM password, nothing else.\n\
         # TYPE  DATABASE  USER  ADDRESS       METHOD\n",
    );
    for net in std::iter::once(&own).chain(&s.clients) {
        text.push_str(&format!(
            "host    all       all   {net:<13} scram-sha-256\n"
        ));
    }
    text
}

/// Checks a client network, `ADDR/LEN` (`10.213.0.0/24`), before it goes
/// into `pg_hba.conf`, where a typo would stop the server from starting.
pub(crate) fn check_network(net: &str) -> Result<(), &'static str> {
    let (addr, len) = net.split_once('/').ok_or("write it as ADDR/LEN")?;
    let addr: IpAddr = addr.parse().map_err(|_| "not an IP address before the /")?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    match len.parse::<u8>() {
        Ok(l) if l <= max => Ok(()),
        _ => Err("the prefix length is not 0..=32 (IPv4) or 0..=128 (IPv6)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_keep_the_server_on_loopback_and_durable() {
        let conf = server_conf(&loopback());
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

    fn loopback() -> Settings {
        Settings {
            listen: IpAddr::from([127, 0, 0, 1]),
            clients: Vec::new(),
            max_connections: 42,
            shared_buffers_mb: 64,
        }
    }

    #[test]
    fn only_loopback_with_a_password_is_let_in() {
        let hba = hba_conf(&loopback());
        let rules: Vec<&str> = hba.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(rules.len(), 1);
        assert!(rules[0].contains("127.0.0.1/32") && rules[0].ends_with("scram-sha-256"));
    }

    #[test]
    fn another_address_and_its_clients_are_let_in_with_a_password() {
        let s = Settings {
            listen: IpAddr::from([10, 213, 0, 10]),
            clients: vec!["10.213.0.0/24".into()],
            ..loopback()
        };
        assert!(server_conf(&s)
            .lines()
            .any(|l| l == "listen_addresses = '10.213.0.10'"));
        let hba = hba_conf(&s);
        let rules: Vec<&str> = hba.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(rules.len(), 2, "{hba}");
        assert!(rules[0].contains(" 10.213.0.10/32 "), "{hba}");
        assert!(rules[1].contains(" 10.213.0.0/24 "), "{hba}");
        assert!(rules.iter().all(|r| r.ends_with(" scram-sha-256")), "{hba}");
    }

    #[test]
    fn client_networks_are_checked() {
        for ok in ["10.213.0.0/24", "127.0.0.1/32", "::1/128", "0.0.0.0/0"] {
            assert_eq!(check_network(ok), Ok(()), "{ok}");
        }
        for bad in [
            "10.213.0.0",
            "10.213.0.0/33",
            "host/24",
            "::1/129",
            "1.2.3.4/x",
            "",
        ] {
            assert!(check_network(bad).is_err(), "{bad}");
        }
    }
}
