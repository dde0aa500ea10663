//! Image uploads: `PUT /berth/images/import?name=NAME` (a root
//! filesystem tarball) and `PUT /berth/images/load[?name=NAME]` (an OCI
//! layout or `docker save` tarball).
//!
//! The signature is checked before a byte of the body is read, against
//! the SHA-256 the client claims in `X-Amz-Content-Sha256` (required
//! here); the body is then streamed to the image cache's staging
//! directory, hashed on the way, and used only if it hashes to the claim.
//! As for every call, the caller's policies must allow the upload
//! (`berth:ImportImage`, `berth:LoadImage`) before a byte is read.

use std::collections::HashMap;
use std::path::Path;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_wire::berth::{ImagesResponse, SIGNING_NAME};
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use super::images::{cache, detail, image_error};
use crate::{Api, ApiError, sigv4};

/// The largest image tarball accepted.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 16 * 1024 * 1024 * 1024;

/// What an upload becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upload {
    Import,
    Load,
}

pub(crate) async fn import(State(api): State<Api>, Query(q): Query<HashMap<String, String>>, req: Request) -> Response {
    respond(handle(&api, Upload::Import, q.get("name").cloned(), req).await)
}

pub(crate) async fn load(State(api): State<Api>, Query(q): Query<HashMap<String, String>>, req: Request) -> Response {
    respond(handle(&api, Upload::Load, q.get("name").cloned(), req).await)
}

fn respond(result: Result<ImagesResponse, ApiError>) -> Response {
    match result {
        Ok(body) => {
            let mut r = (StatusCode::OK, serde_json::to_vec(&body).unwrap_or_default()).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
            r
        }
        Err(e) => e.into_response(),
    }
}

async fn handle(api: &Api, kind: Upload, name: Option<String>, req: Request) -> Result<ImagesResponse, ApiError> {
    let (parts, body) = req.into_parts();
    let signed = sigv4::parse(&parts)?;
    let claimed = parts
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| {
            ApiError::invalid_parameter("An image upload must carry the SHA-256 of its body in X-Amz-Content-Sha256.")
        })?;
    let now = time::OffsetDateTime::now_utc();
    let key = crate::iam::identity::usable_key(api, &signed.access_key_id, signed.session_token.as_deref(), now.unix_timestamp()).await?;
    let scope = sigv4::Scope { region: &api.config.account.region, service: SIGNING_NAME };
    sigv4::verify_for_payload(&signed, &parts, &claimed, &key.key.secret_access_key, &scope, now)?;
    // As every call: the caller's policies must allow it (berth:ImportImage, berth:LoadImage).
    let caller = crate::iam::identity::resolve(api, &key).await?;
    let action = match kind {
        Upload::Import => "ImportImage",
        Upload::Load => "LoadImage",
    };
    let asked = [crate::authz::ask_any("berth", action)];
    crate::authz::authorize(api, &caller, &asked, &crate::edge::global_keys(&parts)).await?;
    tracing::info!(access_key_id = %signed.access_key_id, upload = ?kind, name = ?name, "image upload");
    if kind == Upload::Import && name.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::invalid_parameter("Import needs ?name=NAME: the reference to give the image."));
    }

    let images = cache(api)?;
    let staging = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(images.staging_dir())
        .map_err(|e| internal("creating a staging file", &e))?;
    let received = receive(body, staging.path(), api.config.max_upload_bytes, api.config.body_read_timeout).await?;
    if received != claimed {
        return Err(ApiError::ecs(
            "XAmzContentSHA256Mismatch",
            "The body's SHA-256 does not match the X-Amz-Content-Sha256 header: the upload was damaged or cut short.",
        ));
    }
    let loaded = match kind {
        Upload::Import => vec![images.import_tar(staging.path(), name.as_deref().unwrap_or_default()).await.map_err(image_error)?],
        Upload::Load => images.load(staging.path(), name.as_deref()).await.map_err(image_error)?,
    };
    Ok(ImagesResponse { images: loaded.iter().map(detail).collect() })
}

/// Streams `body` into `path` (at most `limit` bytes, with pauses of at
/// most `idle` between chunks: a big upload may take long, a stalled one
/// may not) and returns its hex SHA-256.
async fn receive(body: axum::body::Body, path: &Path, limit: u64, idle: std::time::Duration) -> Result<String, ApiError> {
    let mut file = tokio::fs::File::create(path).await.map_err(|e| internal("opening the staging file", &e))?;
    let mut hash = Sha256::new();
    let mut len: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = tokio::time::timeout(idle, stream.next()).await.map_err(|_| crate::edge::body_timeout())? {
        let chunk = chunk.map_err(|_| ApiError::Serialization("The upload broke off before its end.".into()))?;
        len += chunk.len() as u64;
        if len > limit {
            return Err(ApiError::TooLarge(format!("The upload is larger than the limit of {limit} bytes.")));
        }
        hash.update(&chunk);
        file.write_all(&chunk).await.map_err(|e| internal("writing the staging file", &e))?;
    }
    file.flush().await.map_err(|e| internal("writing the staging file", &e))?;
    Ok(hex::encode(hash.finalize()))
}

fn internal(what: &str, e: &std::io::Error) -> ApiError {
    tracing::error!(error = %e, "{what}");
    ApiError::ecs("ServerException", "An internal error occurred while receiving the upload. Try the request again.")
}
