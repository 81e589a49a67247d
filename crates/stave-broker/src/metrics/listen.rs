//! Where the metrics listener binds ([`MetricsListen`]) and the bind itself: the default
//! address may be taken (several nodes on one host) and then costs one warning, while an
//! address someone chose must work or the node does not start.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::error::BrokerError;

/// The address metrics are served on when nothing says otherwise.
pub const METRICS_LISTEN_DEFAULT: &str = "127.0.0.1:9644";

/// Where `/metrics` is served: `--metrics-listen`, `STAVE_METRICS_LISTEN`, or
/// `metrics_listen` in the config file, as `HOST:PORT` or `off`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum MetricsListen {
    /// [`METRICS_LISTEN_DEFAULT`]; if it is taken, the node runs without metrics.
    #[default]
    Default,
    /// No metrics listener.
    Off,
    /// An address someone chose: a node that cannot bind it does not start.
    At(SocketAddr),
    /// A listener the caller bound (tests, on port 0), served as it is.
    Bound(BoundListener),
}

/// A listener bound by the caller, handed over once ([`MetricsListen::Bound`]).
#[derive(Debug, Clone)]
pub struct BoundListener {
    listener: Arc<Mutex<Option<std::net::TcpListener>>>,
    addr: SocketAddr,
}

impl MetricsListen {
    /// Serves metrics on `listener`, which the caller bound (to learn its port first).
    pub fn bound(listener: std::net::TcpListener) -> Result<MetricsListen, std::io::Error> {
        let addr = listener.local_addr()?;
        Ok(MetricsListen::Bound(BoundListener {
            listener: Arc::new(Mutex::new(Some(listener))),
            addr,
        }))
    }
}

impl std::str::FromStr for MetricsListen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(MetricsListen::Off);
        }
        text.parse::<SocketAddr>()
            .map(MetricsListen::At)
            .map_err(|_| {
                format!("{text:?} is neither HOST:PORT (an IP address and a port) nor off")
            })
    }
}

impl TryFrom<String> for MetricsListen {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl std::fmt::Display for MetricsListen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricsListen::Default => write!(f, "{METRICS_LISTEN_DEFAULT} (default)"),
            MetricsListen::Off => f.write_str("off"),
            MetricsListen::At(addr) => write!(f, "{addr}"),
            MetricsListen::Bound(bound) => write!(f, "{} (bound by the caller)", bound.addr),
        }
    }
}

/// Binds the metrics listener `listen` asks for (`None`: no metrics). The default address
/// already in use is one warning and no metrics; an explicit address that cannot be bound
/// is an error. Call it within a tokio runtime.
pub(crate) fn bind(listen: &MetricsListen) -> Result<Option<tokio::net::TcpListener>, BrokerError> {
    match METRICS_LISTEN_DEFAULT.parse::<SocketAddr>() {
        Ok(default) => bind_with_default(listen, default),
        Err(_) => Ok(None),
    }
}

/// [`bind`], with `default` standing for the default address.
pub(super) fn bind_with_default(
    listen: &MetricsListen,
    default: SocketAddr,
) -> Result<Option<tokio::net::TcpListener>, BrokerError> {
    let (addr, explicit) = match listen {
        MetricsListen::Off => return Ok(None),
        MetricsListen::Bound(bound) => {
            let taken = crate::broker::lock(&bound.listener).take();
            let Some(listener) = taken else {
                return Err(BrokerError::Config {
                    message: format!("the metrics listener on {} was served already", bound.addr),
                });
            };
            return tokio_listener(listener, bound.addr).map(Some);
        }
        MetricsListen::Default => (default, false),
        MetricsListen::At(addr) => (*addr, true),
    };
    match std::net::TcpListener::bind(addr) {
        Ok(listener) => tokio_listener(listener, addr).map(Some),
        Err(source) if !explicit => {
            tracing::warn!(
                %addr,
                error = %source,
                "the default metrics address is taken: running without metrics \
                 (give each node its own --metrics-listen, or off)"
            );
            Ok(None)
        }
        Err(source) => Err(BrokerError::MetricsListen {
            addr: addr.to_string(),
            source,
        }),
    }
}

fn tokio_listener(
    listener: std::net::TcpListener,
    addr: SocketAddr,
) -> Result<tokio::net::TcpListener, BrokerError> {
    let failed = |source| BrokerError::MetricsListen {
        addr: addr.to_string(),
        source,
    };
    listener.set_nonblocking(true).map_err(failed)?;
    tokio::net::TcpListener::from_std(listener).map_err(failed)
}
