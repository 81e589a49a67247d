//! `CliError`: everything a command can fail with, printed as one line on stderr.

use stave_client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Broker(#[from] stave_broker::BrokerError),
    /// A failure (its whole chain, as one line) and what may fix it.
    #[error("{line} ({hint})")]
    Hinted { line: String, hint: &'static str },
    /// A bad argument value caught after parsing (clap catches the rest).
    #[error("{0}")]
    Usage(String),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
        let what = what.into();
        move |source| CliError::Io { what, source }
    }

    /// Standard output went away (`stave consume ... | head`): not worth an error.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }
}
