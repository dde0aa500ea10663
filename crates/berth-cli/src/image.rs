//! `berth image pull|ls|rm|import|load`: the node's image cache, through
//! the server's operator API.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use berth_wire::berth::{
    IMPORT_PATH, ImageDetail, ImagesResponse, LOAD_PATH, ListImagesRequest, PullImageRequest, PullImageResponse,
    RemoveImageRequest, RemoveImageResponse, SIGNING_NAME, TARGET_PREFIX,
};

use crate::client::{Client, ClientArgs, Output};

#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, clap::Subcommand)]
enum ImageCommand {
    /// Pulls an image into the node's cache (or checks the cached one is current).
    Pull {
        /// e.g. `127.0.0.1:5000/busybox:latest`.
        reference: String,
        /// Registry user name; the password is read from stdin.
        #[arg(long)]
        username: Option<String>,
    },
    /// Lists the cached images.
    #[command(alias = "list")]
    Ls,
    /// Removes an image and the layers no other image uses (refused while a task runs from it).
    #[command(alias = "remove")]
    Rm { reference: String },
    /// Makes an image from a root filesystem: a directory or a tarball.
    Import {
        path: PathBuf,
        /// The reference to give it, e.g. `local/app:1`.
        #[arg(long)]
        name: String,
    },
    /// Loads the images of an OCI layout (directory or tarball) or a `docker save` tarball.
    Load {
        path: PathBuf,
        /// The reference for images the archive does not name.
        #[arg(long)]
        name: Option<String>,
    },
}

pub async fn run(args: ImageArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let output = args.client.output;
    match args.command {
        ImageCommand::Pull { reference, username } => {
            let password = match &username {
                Some(_) => Some(read_password()?),
                None => None,
            };
            let req = PullImageRequest { reference, username, password };
            let resp: PullImageResponse = client.call(TARGET_PREFIX, SIGNING_NAME, "PullImage", &req).await?;
            print_images(output, &[resp.image])
        }
        ImageCommand::Ls => {
            let resp: ImagesResponse =
                client.call(TARGET_PREFIX, SIGNING_NAME, "ListImages", &ListImagesRequest {}).await?;
            print_images(output, &resp.images)
        }
        ImageCommand::Rm { reference } => {
            let resp: RemoveImageResponse =
                client.call(TARGET_PREFIX, SIGNING_NAME, "RemoveImage", &RemoveImageRequest { reference }).await?;
            match output {
                Output::Json => crate::out::outln!("{}", serde_json::to_string_pretty(&resp)?),
                Output::Table => crate::out::outln!("removed {} ({} freed)", resp.reference, bytes(resp.bytes_freed)),
            }
            Ok(())
        }
        ImageCommand::Import { path, name } => {
            let query = format!("{IMPORT_PATH}?name={}", encode(&name));
            upload(&client, output, &path, &query).await
        }
        ImageCommand::Load { path, name } => {
            let query = match name {
                Some(n) => format!("{LOAD_PATH}?name={}", encode(&n)),
                None => LOAD_PATH.to_owned(),
            };
            upload(&client, output, &path, &query).await
        }
    }
}

/// Uploads `path` (a directory is sent as a tarball of its contents).
async fn upload(client: &Client, output: Output, path: &Path, query: &str) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let tarball;
    let file = if meta.is_dir() {
        tarball = tar_dir(path)?;
        tarball.path()
    } else {
        path
    };
    let resp: ImagesResponse = client.upload(query, file, SIGNING_NAME).await?;
    print_images(output, &resp.images)
}

/// A tarball of the directory's contents, ownership and modes kept,
/// symlinks as symlinks.
fn tar_dir(dir: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let file = tempfile::Builder::new().prefix("berth-upload-").suffix(".tar").tempfile()?;
    let mut builder = tar::Builder::new(file.reopen()?);
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    builder.append_dir_all(".", dir).with_context(|| format!("cannot pack {}", dir.display()))?;
    builder.into_inner()?.sync_all()?;
    Ok(file)
}

fn read_password() -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password).context("cannot read the password from stdin")?;
    Ok(password.trim_end_matches(['\n', '\r']).to_owned())
}

fn print_images(output: Output, images: &[ImageDetail]) -> anyhow::Result<()> {
    if output == Output::Json {
        crate::out::outln!("{}", serde_json::to_string_pretty(&serde_json::json!({ "images": images }))?);
        return Ok(());
    }
    let rows: Vec<[String; 5]> = images
        .iter()
        .map(|i| {
            [
                i.reference.clone(),
                i.digest.chars().take(19).collect(),
                bytes(i.size_bytes),
                i.source.clone(),
                time::OffsetDateTime::from_unix_timestamp(i.pulled_at as i64)
                    .ok()
                    .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["REFERENCE", "DIGEST", "SIZE", "SOURCE", "CACHED"], &rows);
    Ok(())
}

/// Prints rows under headers in aligned columns.
pub fn print_table<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) {
    crate::out::table(headers, rows);
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(200 * 1024 * 1024), "200.0 MiB");
    }
}
