//! The node's image cache: pull, list, remove (and, in [`super::uploads`],
//! import and load).

use std::sync::Arc;

use berth_image::{Credentials, Image, ImageError, ImageSource, ImageStore};
use berth_store::TaskFilter;
use berth_wire::berth::{
    ImageDetail, ImagesResponse, ListImagesRequest, PullImageRequest, PullImageResponse, RemoveImageRequest,
    RemoveImageResponse,
};

use crate::{Api, ApiError};

/// The image cache of the node this server runs with.
pub(super) fn cache(api: &Api) -> Result<&Arc<ImageStore>, ApiError> {
    api.images.as_ref().ok_or_else(|| {
        ApiError::ecs(
            "NodeUnavailableException",
            "This Berth server runs without a node agent (--no-agent): it has no image cache.",
        )
    })
}

pub(super) async fn pull(api: &Api, req: PullImageRequest) -> Result<PullImageResponse, ApiError> {
    let credentials = match (req.username, req.password) {
        (Some(u), Some(p)) => Some(Credentials::new(u, p)),
        (None, None) => None,
        _ => return Err(ApiError::invalid_parameter("Give both username and password, or neither.")),
    };
    let image = cache(api)?.pull(&req.reference, credentials.as_ref()).await.map_err(image_error)?;
    Ok(PullImageResponse { image: detail(&image) })
}

pub(super) async fn list(api: &Api, _req: ListImagesRequest) -> Result<ImagesResponse, ApiError> {
    let mut images: Vec<ImageDetail> = cache(api)?.list().await.map_err(image_error)?.iter().map(detail).collect();
    images.sort_by(|a, b| a.reference.cmp(&b.reference));
    Ok(ImagesResponse { images })
}

/// Refused while a live task on this server's store runs from the image:
/// its layers are the task's root filesystem.
pub(super) async fn remove(api: &Api, req: RemoveImageRequest) -> Result<RemoveImageResponse, ApiError> {
    let reference = ImageStore::normalize(&req.reference).map_err(image_error)?;
    if let Some(task) = live_task_using(api, &reference).await? {
        return Err(ApiError::ecs(
            "ImageInUseException",
            format!("Image {reference} is in use by task {task}: stop it first."),
        ));
    }
    let report = cache(api)?.remove(&reference).await.map_err(image_error)?;
    Ok(RemoveImageResponse {
        reference,
        blobs_removed: report.blobs_removed as u64,
        layers_removed: report.layers_removed as u64,
        bytes_freed: report.bytes_freed,
    })
}

async fn live_task_using(api: &Api, reference: &str) -> Result<Option<String>, ApiError> {
    let filter = TaskFilter { live_only: true, ..Default::default() };
    let uses = |t: &berth_model::task::Task| {
        t.containers.iter().any(|c| ImageStore::normalize(&c.image).ok().as_deref() == Some(reference))
    };
    Ok(berth_store::find_task(api.store.as_ref(), &filter, uses).await?.map(|t| t.arn.to_string()))
}

pub(super) fn detail(image: &Image) -> ImageDetail {
    let config = image.config.config().as_ref();
    ImageDetail {
        reference: image.reference.clone(),
        digest: image.digest.to_string(),
        manifest_digest: image.manifest_digest.to_string(),
        layers: u32::try_from(image.layers.len()).unwrap_or(u32::MAX),
        size_bytes: image.size,
        source: match image.source {
            ImageSource::Registry => "registry",
            ImageSource::Import => "import",
            ImageSource::Load => "load",
        }
        .to_owned(),
        pulled_at: image.pulled_at.unix_timestamp_nanos() as f64 / 1e9,
        entrypoint: config.and_then(|c| c.entrypoint().clone()),
        cmd: config.and_then(|c| c.cmd().clone()),
    }
}

/// Image errors as clients see them: what they can act on, by type; I/O
/// trouble inside Berth stays in the log.
pub(super) fn image_error(e: ImageError) -> ApiError {
    match &e {
        ImageError::InvalidReference { .. } | ImageError::NoMatchingPlatform { .. } | ImageError::Unsupported { .. } => {
            ApiError::invalid_parameter(e.report())
        }
        ImageError::Archive { detail, .. } => ApiError::invalid_parameter(format!("Invalid archive: {detail}")),
        _ if e.is_not_found() => ApiError::ecs("ImageNotFoundException", e.report()),
        ImageError::Io { .. } => {
            tracing::error!(error = %e.report(), "image cache");
            ApiError::ecs("ServerException", "An internal error occurred in the image cache. Try the request again.")
        }
        _ => ApiError::ecs("CannotPullImageException", e.report()),
    }
}
