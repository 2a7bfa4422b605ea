//! The API's errors: one variant per error code of docs/API.md, and what a store failure means to a client.

use crate::domain::FieldError;
use crate::store::{StoreError, StoreErrorKind};

/// Every failure a client can see, one variant per API.md error code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{}", fields_text(.0))]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    Forbidden(String),
    /// The path exists, not with this method: the methods it has (the `Allow` header).
    #[error("method not allowed; allowed: {}", .0.join(", "))]
    MethodNotAllowed(Vec<&'static str>),
    #[error("card {0} not found")]
    CardNotFound(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    IdempotencyConflict(String),
    #[error("{0}")]
    AlreadyReversed(String),
    /// Another standing settlement holds the `insurance.settlement_ref` (Version 2).
    #[error("{0}")]
    InsuranceRefReused(String),
    /// A clearing statement of a month that has not ended (local time) cannot be confirmed.
    #[error("{0}")]
    PeriodNotEnded(String),
    /// A clearing statement can be paid only once confirmed.
    #[error("{0}")]
    NotConfirmed(String),
    /// A withdrawal would leave a pool's budget below what it has paid.
    #[error("{0}")]
    PoolWouldOverdraw(String),
    /// A contribution to a program that has no pool in the year.
    #[error("{0}")]
    NotAPool(String),
    #[error("body larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotEligible(String),
    #[error("{0}")]
    NoRulesInForce(String),
    /// A new settlement with a visit date not after the archived days ([retention]).
    #[error("{0}")]
    VisitArchived(String),
    /// A day whose lines were archived ([retention]): its reconciliation and export are in the office's files.
    #[error("{0}")]
    DayArchived(String),
    #[error("rate limit reached; retry in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    OutcomeUnknown(String),
    #[error("{0}")]
    Internal(String),
}

fn fields_text(errors: &[FieldError]) -> String {
    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e.kind {
            StoreErrorKind::Unavailable => {
                ApiError::Unavailable("the settlement store is unavailable; nothing was changed".into())
            }
            StoreErrorKind::OutcomeUnknown => ApiError::OutcomeUnknown(
                "the settlement store did not answer in time; the request may still be applied. \
                 Retrying with the same hospital_settlement_id is safe"
                    .into(),
            ),
            StoreErrorKind::Corrupt => {
                tracing::error!(error = %e, "store returned data the gateway does not understand");
                ApiError::Internal("internal error".into())
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
