//! Why a model call failed, in words every caller and every adapter shares. Each error knows
//! the HTTP status and stable code it stands for, and the message a user may see: internal
//! detail (upstream bodies, provider URLs, file paths, engine messages) stays in
//! [`ModelError::internal`] for the log and never reaches a user.

/// A failed model call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("the model `{0}` does not exist or you do not have access to it")]
    ModelNotFound(String),
    /// The caller may not use this model (runtime settings: model access).
    #[error("your account may not use the model `{0}`; ask an administrator")]
    ModelNotAllowed(String),
    #[error("{message}")]
    InvalidRequest {
        param: Option<&'static str>,
        message: String,
    },
    #[error("{0}")]
    ContextLengthExceeded(String),
    #[error("{0}")]
    Unsupported(String),
    /// A request, token or concurrency limit of the caller's; retry after this many seconds.
    #[error("{message}")]
    Limited {
        /// `rate_limit_exceeded`, `tokens_exceeded` or `concurrency_exceeded`.
        code: &'static str,
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// The backend is full for everyone (its queue is at capacity); retry shortly.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// The upstream answered with an error.
    #[error("upstream {provider} answered {status}: {message}")]
    Upstream {
        provider: String,
        status: u16,
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// No backend could be reached.
    #[error("{0}")]
    Unavailable(String),
    #[error("the model did not answer in time")]
    Timeout,
    /// The engine failed (our fault).
    #[error("engine: {0}")]
    Engine(String),
}

impl ModelError {
    pub fn invalid(param: &'static str, message: impl Into<String>) -> Self {
        ModelError::InvalidRequest {
            param: Some(param),
            message: message.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ModelError::ModelNotFound(_) => 404,
            ModelError::ModelNotAllowed(_) => 403,
            ModelError::InvalidRequest { .. }
            | ModelError::ContextLengthExceeded(_)
            | ModelError::Unsupported(_) => 400,
            ModelError::Limited { .. } => 429,
            ModelError::Busy { .. } | ModelError::Unavailable(_) => 503,
            // Client errors and rate limits of the upstream pass through; anything else is a
            // bad gateway.
            ModelError::Upstream { status, .. } if (400..500).contains(status) => *status,
            ModelError::Upstream { .. } => 502,
            ModelError::Timeout => 504,
            ModelError::Engine(_) => 500,
        }
    }

    /// The stable snake_case code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::ModelNotFound(_) => "model_not_found",
            ModelError::ModelNotAllowed(_) => "model_not_allowed",
            ModelError::InvalidRequest { .. } => "invalid_request",
            ModelError::ContextLengthExceeded(_) => "context_length_exceeded",
            ModelError::Unsupported(_) => "unsupported",
            ModelError::Limited { code, .. } => code,
            ModelError::Busy { .. } => "model_busy",
            ModelError::Upstream { status: 429, .. } => "rate_limit_exceeded",
            ModelError::Upstream { .. } => "upstream_error",
            ModelError::Unavailable(_) => "unavailable",
            ModelError::Timeout => "timeout",
            ModelError::Engine(_) => "internal",
        }
    }

    /// What a user may be shown: the caller's own mistake in full, anything about the
    /// platform's insides in general words.
    pub fn public_message(&self) -> String {
        match self {
            ModelError::Upstream {
                provider, message, ..
            } => {
                if self.status() >= 500 {
                    format!("the model backend `{provider}` failed; retry shortly")
                } else {
                    message.clone()
                }
            }
            ModelError::Unavailable(_) => "no model backend is available; retry shortly".into(),
            ModelError::Engine(_) => {
                "the model failed; see the server log for this request id".into()
            }
            other => other.to_string(),
        }
    }

    /// Detail for the log only: what [`ModelError::public_message`] leaves out.
    pub fn internal(&self) -> Option<&str> {
        match self {
            ModelError::Upstream { message, .. } => Some(message),
            ModelError::Unavailable(detail) | ModelError::Engine(detail) => Some(detail),
            _ => None,
        }
    }

    /// Seconds to wait before retrying, when the error says.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ModelError::Limited {
                retry_after_secs, ..
            }
            | ModelError::Busy {
                retry_after_secs, ..
            }
            | ModelError::Upstream {
                retry_after_secs, ..
            } => *retry_after_secs,
            _ => None,
        }
    }

    /// The parameter at fault, for OpenAI's error body.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            ModelError::ModelNotFound(_) | ModelError::ModelNotAllowed(_) => Some("model"),
            ModelError::InvalidRequest { param, .. } => *param,
            ModelError::ContextLengthExceeded(_) => Some("messages"),
            _ => None,
        }
    }
}

impl ModelError {
    /// A model call's failure as a service's own API (chat, the SEO studio) answers it: the user's own mistake (an unknown or
    /// refused model, a prompt too long) is 422, their limits 429, the platform's trouble 503 —
    /// with the error's safe message; internal detail only in the log.
    pub fn api_error(&self) -> confab_core::ApiError {
        let e = self;
        let message = e.public_message();
        let error = match e {
            ModelError::ModelNotFound(_) => {
                confab_core::ApiError::validation("unknown_model", message)
            }
            ModelError::Limited { .. } => confab_core::ApiError::new(
                http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                message,
            ),
            ModelError::Upstream { status: 429, .. } => confab_core::ApiError::new(
                http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                message,
            ),
            ModelError::ModelNotAllowed(_)
            | ModelError::InvalidRequest { .. }
            | ModelError::ContextLengthExceeded(_)
            | ModelError::Unsupported(_) => {
                confab_core::ApiError::validation("model_refused", message)
            }
            ModelError::Upstream { status, .. } if (400..500).contains(status) => {
                confab_core::ApiError::validation("model_refused", message)
            }
            ModelError::Busy { .. }
            | ModelError::Upstream { .. }
            | ModelError::Unavailable(_)
            | ModelError::Timeout
            | ModelError::Engine(_) => confab_core::ApiError::new(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "model_unavailable",
                message,
            ),
        };
        let error = match e.retry_after_secs() {
            Some(secs) => error.with_retry_after(secs),
            None => error,
        };
        match e.internal() {
            Some(detail) => error.with_internal(detail),
            None => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_never_reaches_the_public_message() {
        let errors = [
            ModelError::Unavailable("http://10.0.0.7:8000/v1: connection refused".into()),
            ModelError::Engine("/var/lib/confab/models/x.gguf: bad magic".into()),
            ModelError::Upstream {
                provider: "openai".into(),
                status: 500,
                message: "{\"secret\":\"internal stack\"}".into(),
                retry_after_secs: None,
            },
        ];
        for error in errors {
            let public = error.public_message();
            let internal = error.internal().unwrap_or_default();
            assert!(!internal.is_empty());
            assert!(!public.contains(internal), "{public}");
            assert!(!public.contains("10.0.0.7") && !public.contains("/var/lib"));
        }
    }

    #[test]
    fn statuses_and_codes() {
        let limited = ModelError::Limited {
            code: "concurrency_exceeded",
            message: "too many".into(),
            retry_after_secs: Some(2),
        };
        assert_eq!(
            (limited.status(), limited.code(), limited.retry_after_secs()),
            (429, "concurrency_exceeded", Some(2))
        );
        let upstream = |status| ModelError::Upstream {
            provider: "p".into(),
            status,
            message: "m".into(),
            retry_after_secs: None,
        };
        assert_eq!(upstream(429).code(), "rate_limit_exceeded");
        assert_eq!(upstream(422).status(), 422);
        assert_eq!(upstream(422).public_message(), "m");
        assert_eq!(upstream(503).status(), 502);
        assert_eq!(ModelError::ModelNotAllowed("m".into()).status(), 403);
        assert_eq!(ModelError::Timeout.status(), 504);
    }
}
