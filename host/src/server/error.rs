//! Errors as HTTP responses: a status and a message that names what is at fault, as
//! JSON for programs or as a small HTML page for browsers.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::errors::{Forbidden, HandlerFailed, InvalidId, NotFound, VersionConflict};
use crate::request::FailureKind;

/// How an error is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Html,
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub format: Format,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            format: Format::Json,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// Shown as an HTML page (for browser routes).
    pub fn html(mut self, yes: bool) -> ApiError {
        if yes {
            self.format = Format::Html;
        }
        self
    }

    /// A host error: unknown ids are 404, unusable ids 400, access 403, a block's own
    /// error in a handler 422, a block past its time 504; the rest 500.
    pub fn from_host(error: anyhow::Error) -> ApiError {
        let message = format!("{error:#}");
        if let Some(store) = crate::errors::find::<crate::errors::StoreUnavailable>(&error) {
            tracing::error!("{message}");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the store is unavailable ({}); retry shortly", store.why),
            );
        }
        let status = if crate::errors::find::<InvalidId>(&error).is_some() {
            StatusCode::BAD_REQUEST
        } else if crate::errors::find::<NotFound>(&error).is_some() {
            StatusCode::NOT_FOUND
        } else if crate::errors::find::<Forbidden>(&error).is_some() {
            StatusCode::FORBIDDEN
        } else if crate::errors::find::<VersionConflict>(&error).is_some() {
            // Another change stored the course first; the message names both versions.
            StatusCode::CONFLICT
        } else if let Some(failed) = crate::errors::find::<HandlerFailed>(&error) {
            match failed.kind {
                FailureKind::BlockError => StatusCode::UNPROCESSABLE_ENTITY,
                FailureKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            }
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The chain may name files and storage internals: it goes to the log, and the
            // client gets an incident id to find it there.
            let incident = super::cookies::new_nonce()[..12].to_string();
            tracing::error!(%incident, "{message}");
            return ApiError::new(
                status,
                format!("internal error (incident {incident}; the server log has the details)"),
            );
        }
        if status.is_server_error() {
            tracing::error!(%status, "{message}");
        }
        ApiError::new(status, message)
    }
}

impl ApiError {
    /// An upload that did not install: the uploader's fault (422, with the whole message:
    /// not a component, another contract, an invalid course), unless storage or the disk
    /// failed underneath, which is ours (500).
    pub fn from_upload(error: anyhow::Error) -> ApiError {
        let ours = crate::errors::find::<std::io::Error>(&error).is_some()
            || crate::errors::find::<sled::Error>(&error).is_some();
        let kind_known = crate::errors::find::<InvalidId>(&error).is_some()
            || crate::errors::find::<NotFound>(&error).is_some()
            || crate::errors::find::<Forbidden>(&error).is_some()
            || crate::errors::find::<VersionConflict>(&error).is_some();
        if ours || kind_known {
            return ApiError::from_host(error);
        }
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("{error:#}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = match self.format {
            Format::Json => (
                status,
                axum::Json(serde_json::json!({ "status": status.as_u16(), "error": self.message })),
            )
                .into_response(),
            Format::Html => {
                (status, super::page::error_page(status, &self.message)).into_response()
            }
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(
                    "Bearer realm=\"xbhost\", error=\"invalid_token\"",
                ),
            );
        }
        response
    }
}
