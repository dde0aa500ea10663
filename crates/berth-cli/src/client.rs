//! The client side of `berth` subcommands: finds the endpoint and the
//! credentials, signs requests with SigV4 (AWS's own `aws-sigv4`, as the
//! SDKs do) and turns AWS error bodies into errors.
//!
//! Where things come from, first found wins, as the aws CLI reads them
//! (the profile is `AWS_PROFILE`, else `default`):
//! - endpoint: `--endpoint`, `BERTH_ENDPOINT`, `AWS_ENDPOINT_URL`, the
//!   profile's `endpoint_url` in `AWS_CONFIG_FILE`, the data dir's
//!   `config` (written by `berth up`);
//! - credentials: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
//!   (`AWS_SESSION_TOKEN`), the profile in `AWS_SHARED_CREDENTIALS_FILE`,
//!   the data dir's `credentials` (profile default);
//! - region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region` in
//!   `AWS_CONFIG_FILE`, the data dir's `config`, `us-east-1`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use aws_sigv4::http_request::{PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::datadir;

/// Where the server is: the options every client subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The Berth endpoint [default: BERTH_ENDPOINT, else the data dir's config].
    #[arg(long, global = true, env = "BERTH_ENDPOINT")]
    pub endpoint: Option<String>,
    /// The data dir whose config and credentials to use [default: as `berth up`'s].
    #[arg(long, global = true, env = "BERTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Output: `table` for people, `json` for programs.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// A signed-request client of one Berth endpoint.
pub struct Client {
    endpoint: String,
    region: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    http: reqwest::Client,
}

/// An error answer in AWS's shape.
#[derive(Debug, thiserror::Error)]
#[error("{aws_type}: {message}")]
pub struct ServiceError {
    pub aws_type: String,
    pub message: String,
}

impl Client {
    pub fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let dir = args.data_dir.clone().unwrap_or_else(datadir::default_dir);
        let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
        // The exported AWS files first (as the aws CLI reads them), then
        // what `berth up` wrote to the data dir.
        let mut configs: Vec<Ini> = Vec::new();
        if let Some(path) = env("AWS_CONFIG_FILE") {
            configs.push(read_ini(Path::new(&path), &profile, IniKind::Config));
        }
        configs.push(read_ini(&dir.join("config"), "default", IniKind::Config));
        let config = |key: &str| configs.iter().find_map(|c| c.get(key).cloned());
        let endpoint = match args.endpoint.clone().or_else(|| env("AWS_ENDPOINT_URL")).or_else(|| config("endpoint_url")) {
            Some(e) => e,
            None => bail!(
                "no Berth endpoint: give --endpoint or BERTH_ENDPOINT, or start `berth up` (it writes {})",
                dir.join("config").display()
            ),
        };
        let region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| config("region"))
            .unwrap_or_else(|| "us-east-1".into());
        let mut sources: Vec<(PathBuf, Ini)> = Vec::new();
        if let Some(path) = env("AWS_SHARED_CREDENTIALS_FILE") {
            let path = PathBuf::from(path);
            let ini = read_ini(&path, &profile, IniKind::Credentials);
            sources.push((path, ini));
        }
        let path = dir.join("credentials");
        sources.push((path.clone(), read_ini(&path, "default", IniKind::Credentials)));
        let (access_key_id, secret_access_key, session_token) =
            match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(id), Some(secret)) => (id, secret, env("AWS_SESSION_TOKEN")),
                _ => {
                    let found = sources.iter().find_map(|(_, c)| {
                        Some((
                            c.get("aws_access_key_id")?.clone(),
                            c.get("aws_secret_access_key")?.clone(),
                            c.get("aws_session_token").cloned(),
                        ))
                    });
                    match found {
                        Some(creds) => creds,
                        None => {
                            let tried: Vec<String> = sources.iter().map(|(p, _)| p.display().to_string()).collect();
                            bail!(
                                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use the data dir \
                                 `berth up` wrote them to (none in {}; profile {profile})",
                                tried.join(", ")
                            )
                        }
                    }
                }
            };
        let http = reqwest::Client::builder().build().context("cannot set up the HTTP client")?;
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            region,
            access_key_id,
            secret_access_key,
            session_token,
            http,
        })
    }

    /// Calls `TARGET_PREFIX.op` (AWS JSON 1.1) with `request`.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        target_prefix: &str,
        service: &str,
        op: &str,
        request: &Req,
    ) -> anyhow::Result<Resp> {
        let body = serde_json::to_vec(request)?;
        let mut req = http::Request::builder()
            .method("POST")
            .uri(format!("{}/", self.endpoint))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("{target_prefix}.{op}"))
            .body(body)?;
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(req.body()));
        self.sign(&mut req, service, &hash, false)?;
        let (parts, body) = req.into_parts();
        let request = self.http.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body);
        decode(request.send().await.with_context(|| format!("cannot reach Berth at {}", self.endpoint))?).await
    }

    /// Calls an AWS Query operation of `service` (form parameters in,
    /// an XML document out), e.g. ELBv2's.
    pub async fn call_query(&self, service: &str, params: &[(String, String)]) -> anyhow::Result<crate::xml::Element> {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish().into_bytes();
        let mut req = http::Request::builder()
            .method("POST")
            .uri(format!("{}/", self.endpoint))
            .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
            .body(body)?;
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(req.body()));
        self.sign(&mut req, service, &hash, false)?;
        let (parts, body) = req.into_parts();
        let request = self.http.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body);
        let resp = request.send().await.with_context(|| format!("cannot reach Berth at {}", self.endpoint))?;
        let status = resp.status();
        let text = resp.text().await.context("the answer broke off")?;
        let doc = crate::xml::parse(&text).with_context(|| format!("unexpected answer (HTTP {status}): {text}"))?;
        if !status.is_success() {
            let error = doc.child("Error");
            let text_of = |name: &str| error.and_then(|e| e.child(name)).map(|e| e.text.clone());
            return Err(ServiceError {
                aws_type: text_of("Code").unwrap_or_else(|| format!("HTTP {status}")),
                message: text_of("Message").unwrap_or(text),
            }
            .into());
        }
        Ok(doc)
    }

    /// PUTs the file at `file` to `path_and_query`, signed with its SHA-256.
    pub async fn upload<Resp: DeserializeOwned>(
        &self,
        path_and_query: &str,
        file: &Path,
        service: &str,
    ) -> anyhow::Result<Resp> {
        let hash = sha256_file(file)?;
        let len = std::fs::metadata(file)?.len();
        let mut req = http::Request::builder()
            .method("PUT")
            .uri(format!("{}{path_and_query}", self.endpoint))
            .header("content-type", "application/x-tar")
            .header("content-length", len.to_string())
            .body(Vec::new())?;
        self.sign(&mut req, service, &hash, true)?;
        let (parts, _) = req.into_parts();
        let body = tokio::fs::File::open(file).await.with_context(|| format!("cannot open {}", file.display()))?;
        let request = self.http.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body);
        decode(request.send().await.with_context(|| format!("cannot reach Berth at {}", self.endpoint))?).await
    }

    fn sign(
        &self,
        req: &mut http::Request<Vec<u8>>,
        service: &str,
        payload_hash: &str,
        hash_header: bool,
    ) -> anyhow::Result<()> {
        let host = req.uri().authority().map(ToString::to_string).context("the endpoint has no host")?;
        req.headers_mut().insert("host", host.parse()?);
        let identity = aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "berth-cli",
        )
        .into();
        let mut settings = SigningSettings::default();
        if hash_header {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .context("invalid signing parameters")?
            .into();
        let (instructions, _) = {
            let headers: Vec<(&str, &str)> =
                req.headers().iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))).collect();
            let uri = req.uri().to_string();
            let signable = SignableRequest::new(
                req.method().as_str(),
                uri,
                headers.into_iter(),
                SignableBody::Precomputed(payload_hash.to_owned()),
            )
            .context("request cannot be signed")?;
            aws_sigv4::http_request::sign(signable, &params).context("signing failed")?.into_parts()
        };
        instructions.apply_to_request_http1x(req);
        Ok(())
    }
}

async fn decode<Resp: DeserializeOwned>(resp: reqwest::Response) -> anyhow::Result<Resp> {
    let status = resp.status();
    let bytes = resp.bytes().await.context("the answer broke off")?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .with_context(|| format!("unexpected answer: {}", String::from_utf8_lossy(&bytes)));
    }
    let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let aws_type =
        v["__type"].as_str().map_or_else(|| format!("HTTP {status}"), |t| t.rsplit('#').next().unwrap_or(t).to_owned());
    let message = v["message"].as_str().map_or_else(|| String::from_utf8_lossy(&bytes).into_owned(), str::to_owned);
    Err(ServiceError { aws_type, message }.into())
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    use sha2::Digest as _;
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hash = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hash).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(hash.finalize()))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

type Ini = std::collections::HashMap<String, String>;

/// Which AWS file an INI is: profiles are `[profile NAME]` in the config
/// file (but `[default]`), `[NAME]` in the credentials file.
#[derive(Clone, Copy)]
enum IniKind {
    Config,
    Credentials,
}

/// One profile's section of an AWS-style INI file (empty if unreadable).
fn read_ini(path: &Path, profile: &str, kind: IniKind) -> Ini {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let header = match kind {
        IniKind::Config if profile != "default" => format!("[profile {profile}]"),
        _ => format!("[{profile}]"),
    };
    let mut inside = false;
    let mut out = Ini::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line.split_whitespace().collect::<Vec<_>>().join(" ") == header;
        } else if let (true, Some((k, v))) = (inside, line.split_once('=')) {
            out.insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_profiles_as_the_aws_cli_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "[profile other]\nregion = eu-west-1\n[default]\nregion = us-east-2\nendpoint_url = http://127.0.0.1:1\n",
        )
        .unwrap();
        let ini = read_ini(&path, "default", IniKind::Config);
        assert_eq!(ini.get("region").map(String::as_str), Some("us-east-2"));
        assert_eq!(ini.get("endpoint_url").map(String::as_str), Some("http://127.0.0.1:1"));
        let other = read_ini(&path, "other", IniKind::Config);
        assert_eq!(other.get("region").map(String::as_str), Some("eu-west-1"));
        assert!(other.get("endpoint_url").is_none(), "a profile does not inherit default's keys");
        assert!(read_ini(&path, "other", IniKind::Credentials).is_empty(), "credentials files name profiles bare");
        let creds = dir.path().join("credentials");
        std::fs::write(&creds, "[default]\naws_access_key_id = A\n[other]\naws_access_key_id = B\n").unwrap();
        assert_eq!(read_ini(&creds, "other", IniKind::Credentials).get("aws_access_key_id").map(String::as_str), Some("B"));
        assert!(read_ini(&dir.path().join("missing"), "default", IniKind::Config).is_empty());
    }
}
