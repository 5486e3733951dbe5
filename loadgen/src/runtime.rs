//! How many Tokio worker threads a run gets. The binary asks before it
//! builds its runtime; nothing else depends on it.

/// Tokio worker threads for a run against `url` (`None`: not known from the
/// command line): one per core, but one fewer when the target is on this
/// machine (a loopback host), so that the server under test keeps a core.
/// On a 2-core machine against a loopback server one worker measured as fast
/// as two, with less CPU (docs/loadgen.md, "Figures"); a generator that
/// competes with its target for CPU measures the contention, not the server.
/// `TOKIO_WORKER_THREADS` overrides this (the binary checks it).
pub fn worker_threads_for(url: Option<&str>) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let loopback = url
        .and_then(|u| url::Url::parse(u).ok())
        .is_some_and(|u| match u.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            None => false,
        });
    if loopback {
        cores.saturating_sub(1).max(1)
    } else {
        cores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_a_core_to_a_loopback_target() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let local = cores.saturating_sub(1).max(1);
        assert_eq!(worker_threads_for(Some("http://127.0.0.1:8080/")), local);
        assert_eq!(worker_threads_for(Some("http://localhost")), local);
        assert_eq!(worker_threads_for(Some("http://[::1]:80/x")), local);
        assert_eq!(worker_threads_for(Some("http://10.1.2.3/")), cores);
        assert_eq!(worker_threads_for(Some("not a url")), cores);
        assert_eq!(worker_threads_for(None), cores);
    }
}
