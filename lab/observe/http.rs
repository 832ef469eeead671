//! What an HTTP request to a service got: the observation behind probes, waits and recovery
//! times, whichever route the request took.

/// What an HTTP request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// Nothing listens (ECONNREFUSED).
    Refused,
    /// No answer within the request's timeout (connect or response).
    Timeout,
    /// Anything else (reset, garbage): what went wrong.
    Other(String),
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Status(s) => write!(f, "{s}"),
            Answer::Refused => f.write_str("refused"),
            Answer::Timeout => f.write_str("timeout"),
            Answer::Other(why) => f.write_str(why),
        }
    }
}

