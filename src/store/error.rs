//! The store's error: which operation failed, what a caller may conclude from it (did anything change, is a retry
//! safe), and the Redis client's error behind it.

/// What a failed store call means for the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Not sent, or refused before it ran: nothing changed, a retry is safe.
    Unavailable,
    /// Sent, and no answer in time: it may still apply. Retrying a settle or reversal with the same ids is safe.
    OutcomeUnknown,
    /// Redis answered something this code does not understand (a bug, or data changed behind our back).
    Corrupt,
}

impl StoreErrorKind {
    /// The `kind` label of `settlegate_redis_errors_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreErrorKind::Unavailable => "unavailable",
            StoreErrorKind::OutcomeUnknown => "outcome_unknown",
            StoreErrorKind::Corrupt => "corrupt",
        }
    }
}

/// A store failure, for logs (never shown to clients: the HTTP layer maps `kind` to 503, 504 or 500).
#[derive(Debug, thiserror::Error)]
#[error("store {op}: {}: {detail}", kind.as_str())]
pub struct StoreError {
    /// The store operation (also the `op` label of the Redis metrics), e.g. `settle`.
    pub op: &'static str,
    /// Whether anything may have changed, and so what the client is told.
    pub kind: StoreErrorKind,
    /// What went wrong, in words.
    pub detail: String,
    /// The Redis client's error, when there was one.
    #[source]
    pub cause: Option<redis::RedisError>,
}

impl StoreError {
    pub(crate) fn new(op: &'static str, kind: StoreErrorKind, detail: impl Into<String>) -> Self {
        StoreError { op, kind, detail: detail.into(), cause: None }
    }

    /// A reply this code cannot read.
    pub(crate) fn corrupt(op: &'static str, detail: impl Into<String>) -> Self {
        StoreError::new(op, StoreErrorKind::Corrupt, detail)
    }

    /// Classifies an error of the Redis client: refused before it ran, unknown outcome, or an answer that makes no
    /// sense. `unknown` is the kind of a failure after the request may have reached Redis (`Unavailable` for reads,
    /// which change nothing).
    pub(crate) fn from_redis(op: &'static str, unknown: StoreErrorKind, e: redis::RedisError) -> Self {
        let kind = if e.is_connection_refusal() {
            StoreErrorKind::Unavailable
        } else if e.is_timeout() || e.is_io_error() || e.is_connection_dropped() {
            unknown
        } else if matches!(
            e.code(),
            Some(
                "OOM"
                    | "LOADING"
                    | "READONLY"
                    | "BUSY"
                    | "MASTERDOWN"
                    | "NOSCRIPT"
                    | "CLUSTERDOWN"
                    | "TRYAGAIN"
                    | "MOVED"
                    | "ASK"
            )
        ) {
            // refused by the server before the command ran
            StoreErrorKind::Unavailable
        } else {
            StoreErrorKind::Corrupt
        };
        // A server error says what Redis (or a script) refused; a reply the client could not convert quotes the
        // reply, which may hold a card id, and this detail is logged: then only its category.
        let detail = if e.code().is_some() || kind != StoreErrorKind::Corrupt {
            e.to_string()
        } else {
            format!("{} (reply withheld from logs)", e.category())
        };
        StoreError { op, kind, detail, cause: Some(e) }
    }

    /// Whether the same call may simply be made again.
    pub fn retry_safe(&self) -> bool {
        matches!(self.kind, StoreErrorKind::Unavailable | StoreErrorKind::OutcomeUnknown)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_corrupt_answers_are_unsafe_to_retry() {
        assert!(StoreError::new("settle", StoreErrorKind::Unavailable, "x").retry_safe());
        assert!(StoreError::new("settle", StoreErrorKind::OutcomeUnknown, "x").retry_safe());
        assert!(!StoreError::corrupt("settle", "x").retry_safe());
    }
}
