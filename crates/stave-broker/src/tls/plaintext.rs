//! The plaintext warning. Plaintext stays the default (`stave server` on 127.0.0.1 just
//! works), but a node reachable beyond its own machine without TLS sends records, and the
//! cluster secret, in the clear: it says so at start and every hour, until given TLS or told
//! `--insecure-ok`.

use std::net::SocketAddr;
use std::time::Duration;

/// How often the warning repeats while the node runs.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(3600);

/// Whether a node listening on `listen` should warn: no TLS, not told it is fine, and an
/// address other machines may reach (anything but loopback; `0.0.0.0` is every address).
pub fn plaintext_warning_due(listen: SocketAddr, tls: bool, insecure_ok: bool) -> bool {
    !tls && !insecure_ok && !listen.ip().is_loopback()
}

/// Warns now and every [`WARNING_INTERVAL`], forever (the caller aborts it at shutdown).
pub async fn warn_plaintext_loop(listen: SocketAddr) {
    let mut every = tokio::time::interval(WARNING_INTERVAL);
    loop {
        every.tick().await;
        tracing::warn!(
            %listen,
            "serving plaintext beyond loopback: records and the cluster secret cross the \
             network unencrypted; give the node --tls-cert, --tls-key and --tls-ca, or \
             --insecure-ok to silence this"
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn due(listen: &str, tls: bool, insecure_ok: bool) -> bool {
        plaintext_warning_due(listen.parse().unwrap(), tls, insecure_ok)
    }

    #[test]
    fn only_plaintext_beyond_loopback_warns() {
        assert!(!due("127.0.0.1:7070", false, false));
        assert!(!due("127.0.0.2:7070", false, false));
        assert!(!due("[::1]:7070", false, false));
        assert!(due("0.0.0.0:7070", false, false));
        assert!(due("[::]:7070", false, false));
        assert!(due("10.1.2.3:7070", false, false));
    }

    #[test]
    fn tls_or_insecure_ok_silences_it() {
        assert!(!due("0.0.0.0:7070", true, false));
        assert!(!due("0.0.0.0:7070", false, true));
        assert!(!due("10.1.2.3:7070", true, true));
    }
}
