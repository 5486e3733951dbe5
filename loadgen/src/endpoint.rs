//! Where users connect: the target's `host:port`, resolved once per run and
//! shared by every user, so a run does one DNS lookup, not one per
//! connection. A failed lookup is kept, not raised: each request then fails
//! as `connect` with its reason, as a refused connection would.

use std::net::SocketAddr;

use http::HeaderValue;

/// Where users connect: resolved once per run.
#[derive(Debug)]
pub struct Endpoint {
    /// `host:port` as written (for the `Host` header).
    pub host_header: HeaderValue,
    /// The addresses `host:port` resolved to (empty when resolution failed).
    pub addrs: Vec<SocketAddr>,
    /// Why resolution failed, if it did.
    pub resolve_error: Option<String>,
}

impl Endpoint {
    /// Resolves `authority` (`host:port`).
    pub async fn resolve(authority: &str) -> Endpoint {
        let host_header = HeaderValue::from_str(authority)
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        match tokio::net::lookup_host(authority).await {
            Ok(a) => {
                let addrs: Vec<SocketAddr> = a.collect();
                let resolve_error = addrs
                    .is_empty()
                    .then(|| format!("{authority} resolved to no address"));
                Endpoint {
                    host_header,
                    addrs,
                    resolve_error,
                }
            }
            Err(e) => Endpoint {
                host_header,
                addrs: Vec::new(),
                resolve_error: Some(format!("cannot resolve {authority}: {e}")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_or_says_why_not() {
        let ep = Endpoint::resolve("127.0.0.1:8080").await;
        assert_eq!(ep.host_header, "127.0.0.1:8080");
        assert_eq!(ep.addrs, ["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]);
        assert_eq!(ep.resolve_error, None);
        let ep = Endpoint::resolve("no port here").await;
        assert!(ep.addrs.is_empty());
        assert!(
            ep.resolve_error
                .as_deref()
                .unwrap()
                .starts_with("cannot resolve no port here"),
            "{:?}",
            ep.resolve_error
        );
    }
}
