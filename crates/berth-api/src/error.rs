//! The one place where errors become AWS error responses.
//!
//! Every failure a client can see is an [`ApiError`]; the edge writes it in
//! the protocol the request came in (`crate::protocol::Protocol::error`);
//! [`ApiError::into_response`] is AWS JSON 1.1's `{"__type": ..., "message": ...}`
//! body, for routes outside the AWS protocols.
//! Internal failures (store, I/O) are logged with their cause and shown to
//! clients only as a generic `ServerException`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_model::ModelError;
use berth_store::StoreError;

use crate::sigv4::AuthError;

/// An error a client sees, by AWS exception type.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A rule of the model (ClientException, InvalidParameterException).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Authentication failed (missing, unknown or bad signature).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// An ECS exception raised by a handler, e.g. ClusterNotFoundException.
    #[error("{message}")]
    Ecs { aws_type: &'static str, message: String },
    /// ECS's ConflictException: a RunTask clientToken already used with
    /// other parameters; `resource_ids` are the tasks it started.
    #[error("{message}")]
    Conflict { message: String, resource_ids: Vec<String> },
    /// A CloudWatch Logs exception raised by a handler, e.g.
    /// ResourceNotFoundException.
    #[error("{message}")]
    Logs { aws_type: &'static str, message: String },
    /// An error of another service Berth serves (EC2, STS, CloudWatch),
    /// by its code, e.g. `InvalidGroup.NotFound`.
    #[error("{message}")]
    Service { aws_type: &'static str, message: String },
    /// An operation the service's model has but Berth does not serve.
    #[error("{0}")]
    Unsupported(String),
    /// A service Berth does not serve at all.
    #[error("{0}")]
    UnknownService(String),
    /// The request could not be read: bad JSON or wrong member types.
    #[error("{0}")]
    Serialization(String),
    /// The target names no operation this endpoint has.
    #[error("{0}")]
    UnknownOperation(String),
    /// The request body is over the documented limit.
    #[error("{0}")]
    TooLarge(String),
    /// The request body did not arrive in time (`ApiConfig::body_read_timeout`).
    #[error("{0}")]
    Timeout(String),
    /// The caller's policies do not allow the action (AWS's message, naming
    /// the principal, the action and the resource). Each protocol writes
    /// its own code: AccessDeniedException (JSON, CBOR, REST-JSON),
    /// AccessDenied (Query), UnauthorizedOperation (EC2).
    #[error("{0}")]
    AccessDenied(String),
    /// Something failed inside Berth; details go to the log only.
    #[error("internal error")]
    Internal(#[from] StoreError),
}

impl ApiError {
    pub fn ecs(aws_type: &'static str, message: impl Into<String>) -> Self {
        Self::Ecs { aws_type, message: message.into() }
    }

    pub fn logs(aws_type: &'static str, message: impl Into<String>) -> Self {
        Self::Logs { aws_type, message: message.into() }
    }

    pub fn service(aws_type: &'static str, message: impl Into<String>) -> Self {
        Self::Service { aws_type, message: message.into() }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::ecs("InvalidParameterException", message)
    }

    pub fn cluster_not_found() -> Self {
        Self::ecs("ClusterNotFoundException", "Cluster not found.")
    }

    /// The AWS exception type (`__type`).
    pub fn aws_type(&self) -> &'static str {
        match self {
            Self::Model(e) => e.aws_type(),
            Self::Auth(e) => e.aws_type(),
            Self::Ecs { aws_type, .. } | Self::Logs { aws_type, .. } | Self::Service { aws_type, .. } => aws_type,
            Self::Conflict { .. } => "ConflictException",
            Self::Unsupported(_) => "UnknownOperationException",
            Self::UnknownService(_) => "UnknownOperationException",
            Self::Serialization(_) => "SerializationException",
            Self::UnknownOperation(_) => "UnknownOperationException",
            Self::TooLarge(_) => "RequestEntityTooLargeException",
            Self::Timeout(_) => "RequestTimeoutException",
            Self::AccessDenied(_) => "AccessDeniedException",
            Self::Internal(_) => "ServerException",
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Auth(e) => StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::FORBIDDEN),
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub(crate) fn client_message(&self) -> String {
        match self {
            Self::Internal(_) => "An internal error occurred. Try the request again.".to_owned(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(e) = &self {
            tracing::error!(error = %e, cause = ?std::error::Error::source(e), "internal error");
        }
        let body = serde_json::json!({ "__type": self.aws_type(), "message": self.client_message() });
        let mut resp = (self.status(), body.to_string()).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
        resp
    }
}
