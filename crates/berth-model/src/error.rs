//! Rule violations, each naming the ECS exception a client should see.

/// A request broke one of ECS's rules. The variant is the ECS exception
/// type; the message is for the user and says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// `ClientException`: the request cannot be honoured as written.
    #[error("{0}")]
    Client(String),
    /// `InvalidParameterException`: a parameter has a value ECS rejects.
    #[error("{0}")]
    InvalidParameter(String),
}

impl ModelError {
    /// The ECS exception type (`__type`) for this error.
    pub fn aws_type(&self) -> &'static str {
        match self {
            Self::Client(_) => "ClientException",
            Self::InvalidParameter(_) => "InvalidParameterException",
        }
    }

    pub(crate) fn client(msg: impl Into<String>) -> Self {
        Self::Client(msg.into())
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidParameter(msg.into())
    }
}
