//! The balancer's admin `/status` document and the small HTTP helpers the
//! lab uses to read it and to check that a process answers.
//!
//! The balancer's counters are totals since start, so the lab reads
//! `/status` before and after a step and keeps the difference
//! ([`ShareDelta`]): each replica's share of the requests the balancer sent,
//! which by the balancer's contract add up to everything it proxied.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Error;

/// `GET /status` of the balancer's admin endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BalancerStatus {
    /// Algorithm in use.
    #[serde(default)]
    pub algorithm: String,
    /// Upstream groups.
    #[serde(default)]
    pub upstreams: Vec<Upstream>,
}

/// One upstream group.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Upstream {
    /// Group name.
    #[serde(default)]
    pub name: String,
    /// Requests waiting in the group's queue.
    #[serde(default)]
    pub queue_depth: u64,
    /// Its servers.
    #[serde(default)]
    pub servers: Vec<Server>,
}

/// One server of a group.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Server {
    /// Index in the group.
    #[serde(default)]
    pub id: u64,
    /// `host:port`.
    #[serde(default)]
    pub addr: String,
    /// up, down, draining, unhealthy, backup.
    #[serde(default)]
    pub state: String,
    /// Configured weight.
    #[serde(default)]
    pub weight: u32,
    /// Requests in flight now.
    #[serde(default)]
    pub active: u64,
    /// Requests sent to it since start.
    #[serde(default)]
    pub requests: u64,
    /// Failed attempts since start.
    #[serde(default)]
    pub failures: u64,
    /// Average latency, ms.
    #[serde(default)]
    pub latency_avg_ms: f64,
}

impl BalancerStatus {
    /// All servers of all groups.
    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        self.upstreams.iter().flat_map(|u| u.servers.iter())
    }
}

/// One replica's share of the requests over a step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Share {
    /// Replica address as the balancer knows it.
    pub addr: String,
    /// The lab's name for it (`r1`…), as in the process list; empty if unknown.
    #[serde(default)]
    pub replica: String,
    /// Requests the balancer sent to it during the step.
    pub requests: u64,
    /// Failed attempts during the step.
    pub failures: u64,
    /// Its state at the end of the step.
    pub state: String,
    /// Its fraction of all requests the balancer sent (0..=1).
    pub fraction: f64,
}

/// The balancer's view of a step: per-replica shares and their total.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ShareDelta {
    /// One entry per server, in the balancer's order.
    pub shares: Vec<Share>,
    /// Sum of the shares: everything the balancer sent upstream in the step.
    pub total: u64,
}

impl ShareDelta {
    /// The difference between two readings of `/status`.
    pub fn between(before: &BalancerStatus, after: &BalancerStatus) -> ShareDelta {
        let old: HashMap<&str, &Server> = before.servers().map(|s| (s.addr.as_str(), s)).collect();
        let mut shares: Vec<Share> = after
            .servers()
            .map(|s| {
                let (r0, f0) = old
                    .get(s.addr.as_str())
                    .map_or((0, 0), |o| (o.requests, o.failures));
                Share {
                    addr: s.addr.clone(),
                    replica: String::new(),
                    requests: s.requests.saturating_sub(r0),
                    failures: s.failures.saturating_sub(f0),
                    state: s.state.clone(),
                    fraction: 0.0,
                }
            })
            .collect();
        let total: u64 = shares.iter().map(|s| s.requests).sum();
        for s in &mut shares {
            s.fraction = if total == 0 {
                0.0
            } else {
                s.requests as f64 / total as f64
            };
        }
        ShareDelta { shares, total }
    }

    /// Names each share's replica (`r1 …`) from its address.
    pub fn name_replicas<'a>(&mut self, id_of: impl Fn(&str) -> Option<&'a str>) {
        for s in &mut self.shares {
            s.replica = id_of(&s.addr).unwrap_or_default().to_string();
        }
    }
}

impl Share {
    /// `r1 127.0.0.1:40001`, or the address alone when the name is unknown.
    pub fn label(&self) -> String {
        if self.replica.is_empty() {
            self.addr.clone()
        } else {
            format!("{} {}", self.replica, self.addr)
        }
    }
}

/// A small HTTP client for the lab's own checks (never for load).
#[derive(Debug, Clone)]
pub struct Probe {
    /// The client, with a short timeout.
    client: reqwest::Client,
}

impl Default for Probe {
    fn default() -> Self {
        Probe::new()
    }
}

impl Probe {
    /// A client with a 5-second timeout and no proxy (loopback only).
    pub fn new() -> Probe {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .unwrap_or_default();
        Probe { client }
    }

    /// `GET url`, returning status and body.
    pub async fn get(&self, url: &str) -> Result<(u16, String), Error> {
        let resp = self.client.get(url).send().await.map_err(|e| Error::Http {
            what: format!("GET {url}"),
            message: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| Error::Http {
            what: format!("GET {url}"),
            message: e.to_string(),
        })?;
        Ok((status, body))
    }

    /// Reads and parses the balancer's `/status`.
    pub async fn balancer_status(&self, url: &str) -> Result<BalancerStatus, Error> {
        let (code, body) = self.get(url).await?;
        if code != 200 {
            return Err(Error::Http {
                what: format!("GET {url}"),
                message: format!("status {code}"),
            });
        }
        serde_json::from_str(&body).map_err(|e| Error::Http {
            what: format!("GET {url}"),
            message: format!("not the balancer's status document: {e}"),
        })
    }

    /// Polls `url` until it answers 200 or `timeout` passes.
    pub async fn wait_ok(&self, url: &str, timeout: Duration) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = String::from("no answer");
        while tokio::time::Instant::now() < deadline {
            match self.get(url).await {
                Ok((200, _)) => return Ok(()),
                Ok((code, body)) => {
                    last = format!(
                        "status {code}: {}",
                        body.chars().take(200).collect::<String>()
                    )
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::Http {
            what: format!("GET {url}"),
            message: format!(
                "not ready after {}: {last}",
                humantime::format_duration(timeout)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"algorithm":"round_robin","upstreams":[{"name":"backend","queue_depth":0,
      "servers":[{"id":0,"addr":"127.0.0.1:8001","state":"up","weight":1,"active":0,"requests":10,"failures":1,"latency_avg_ms":1.2},
                 {"id":1,"addr":"127.0.0.1:8002","state":"up","weight":1,"active":0,"requests":30,"failures":0,"latency_avg_ms":1.0}]}]}"#;

    #[test]
    fn parses_the_contract_document() {
        let s: BalancerStatus = serde_json::from_str(DOC).unwrap();
        assert_eq!(s.algorithm, "round_robin");
        assert_eq!(s.servers().count(), 2);
        assert_eq!(s.servers().map(|s| s.requests).sum::<u64>(), 40);
    }

    #[test]
    fn shares_are_differences_and_add_up() {
        let before: BalancerStatus = serde_json::from_str(DOC).unwrap();
        let mut after = before.clone();
        after.upstreams[0].servers[0].requests += 50;
        after.upstreams[0].servers[1].requests += 150;
        let d = ShareDelta::between(&before, &after);
        assert_eq!(d.total, 200);
        assert_eq!(d.shares[0].requests, 50);
        assert!((d.shares.iter().map(|s| s.fraction).sum::<f64>() - 1.0).abs() < 1e-9);
        let empty = ShareDelta::between(&before, &before);
        assert_eq!(empty.total, 0);
        assert_eq!(empty.shares[0].fraction, 0.0);
    }
}
