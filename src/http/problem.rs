//! One error → one HTTP status, `code` and title (API.md "Errors"), rendered as `application/problem+json`.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};

use super::Body;
use crate::app::ApiError;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::CardNotFound(_) | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::IdempotencyConflict(_)
            | ApiError::AlreadyReversed(_)
            | ApiError::InsuranceRefReused(_)
            | ApiError::PeriodNotEnded(_)
            | ApiError::NotConfirmed(_)
            | ApiError::PoolWouldOverdraw(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::DayArchived(_) => StatusCode::GONE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotEligible(_)
            | ApiError::NoRulesInForce(_)
            | ApiError::NotAPool(_)
            | ApiError::VisitArchived(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::OutcomeUnknown(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid_request",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::CardNotFound(_) => "card_not_found",
            ApiError::NotFound(_) => "not_found",
            ApiError::IdempotencyConflict(_) => "idempotency_conflict",
            ApiError::AlreadyReversed(_) => "already_reversed",
            ApiError::InsuranceRefReused(_) => "insurance_ref_reused",
            ApiError::PeriodNotEnded(_) => "period_not_ended",
            ApiError::NotConfirmed(_) => "not_confirmed",
            ApiError::PoolWouldOverdraw(_) => "pool_would_overdraw",
            ApiError::NotAPool(_) => "not_a_pool",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::NotEligible(_) => "not_eligible",
            ApiError::NoRulesInForce(_) => "no_rules_in_force",
            ApiError::VisitArchived(_) => "visit_archived",
            ApiError::DayArchived(_) => "day_archived",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::OutcomeUnknown(_) => "outcome_unknown",
            ApiError::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "Invalid request",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::MethodNotAllowed(_) => "Method not allowed",
            ApiError::CardNotFound(_) => "Card not found",
            ApiError::NotFound(_) => "Not found",
            ApiError::IdempotencyConflict(_) => "Idempotency conflict",
            ApiError::AlreadyReversed(_) => "Already reversed",
            ApiError::InsuranceRefReused(_) => "Insurance settlement already used",
            ApiError::PeriodNotEnded(_) => "Period not ended",
            ApiError::NotConfirmed(_) => "Not confirmed",
            ApiError::PoolWouldOverdraw(_) => "Pool would be overdrawn",
            ApiError::NotAPool(_) => "Not a pool",
            ApiError::PayloadTooLarge(_) => "Payload too large",
            ApiError::UnsupportedMediaType(_) => "Unsupported media type",
            ApiError::NotEligible(_) => "Card not eligible",
            ApiError::NoRulesInForce(_) => "No rules in force",
            ApiError::VisitArchived(_) => "Visit date archived",
            ApiError::DayArchived(_) => "Day archived",
            ApiError::RateLimited { .. } => "Rate limited",
            ApiError::Unavailable(_) => "Store unavailable",
            ApiError::OutcomeUnknown(_) => "Outcome unknown",
            ApiError::Internal(_) => "Internal error",
        }
    }

    pub fn to_response(&self) -> Response<Body> {
        let mut body = serde_json::json!({
            "type": "about:blank",
            "title": self.title(),
            "status": self.status().as_u16(),
            "code": self.code(),
            "detail": self.to_string(),
        });
        if let ApiError::Invalid(errors) = self {
            body["errors"] = serde_json::to_value(errors).expect("field errors serialise");
        }
        let mut resp = Response::new(super::full(Bytes::from(serde_json::to_vec(&body).expect("json"))));
        *resp.status_mut() = self.status();
        let h = resp.headers_mut();
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        match self {
            ApiError::RateLimited { retry_after_s } => {
                h.insert(http::header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            ApiError::Unavailable(_) => {
                h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::MethodNotAllowed(allowed) => {
                if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                    h.insert(http::header::ALLOW, v);
                }
            }
            _ => {}
        }
        resp
    }
}
