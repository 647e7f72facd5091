//! Turning a `--checkpoint-store` URL into an object store and a prefix.

use super::error::{Error, Result};
use object_store::path::Path;
use object_store::ObjectStore;
use std::sync::Arc;

fn config(url: &str, reason: impl Into<String>) -> Error {
    Error::Config { url: url.to_owned(), reason: reason.into() }
}

/// The backend and the prefix under which the store's jobs live.
pub(crate) fn parse(url: &str) -> Result<(Arc<dyn ObjectStore>, Path)> {
    let parsed = url::Url::parse(url)
        .map_err(|e| config(url, format!("not a URL ({e}); expected file:///absolute/path or s3://bucket/prefix")))?;
    match parsed.scheme() {
        "file" => file(url, &parsed),
        "s3" => s3(url, &parsed),
        other => Err(config(
            url,
            format!("unsupported scheme `{other}`; expected file:///absolute/path or s3://bucket/prefix"),
        )),
    }
}

fn file(url: &str, parsed: &url::Url) -> Result<(Arc<dyn ObjectStore>, Path)> {
    if parsed.host_str().is_some_and(|h| !h.is_empty()) {
        return Err(config(url, "a file:// URL needs an absolute path: file:///absolute/path (three slashes)"));
    }
    let Ok(dir) = parsed.to_file_path() else {
        return Err(config(url, "a file:// URL needs an absolute path: file:///absolute/path"));
    };
    // A missing directory is refused rather than created: on a shared volume
    // it usually means the volume is not mounted, and creating a directory
    // would split the job's checkpoints between the mount point and the volume.
    if !dir.is_dir() {
        return Err(Error::Refused {
            url: url.to_owned(),
            reason: format!("directory {} does not exist (is the shared volume mounted?)", dir.display()),
        });
    }
    let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir)
        .map_err(|e| Error::Refused { url: url.to_owned(), reason: e.to_string() })?;
    Ok((Arc::new(fs), Path::default()))
}

#[cfg(feature = "s3")]
fn s3(url: &str, parsed: &url::Url) -> Result<(Arc<dyn ObjectStore>, Path)> {
    use object_store::aws::AmazonS3Builder;
    let Some(bucket) = parsed.host_str().filter(|b| !b.is_empty()) else {
        return Err(config(url, "an s3:// URL needs a bucket: s3://bucket/prefix"));
    };
    install_crypto_provider();
    // Credentials, region and endpoint come from the usual AWS_* variables
    // (AWS_ENDPOINT_URL and AWS_ALLOW_HTTP=true for Garage or MinIO on the LAN).
    let s3 = AmazonS3Builder::from_env().with_bucket_name(bucket).build().map_err(|e| config(url, e.to_string()))?;
    let prefix = Path::from(parsed.path().trim_matches('/'));
    Ok((Arc::new(s3), prefix))
}

/// reqwest is built without a TLS provider so that no aws-lc-sys (cmake)
/// enters the build; rustls uses `ring`, installed once per process here.
#[cfg(feature = "s3")]
fn install_crypto_provider() {
    // Err means a provider is already installed, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(not(feature = "s3"))]
fn s3(url: &str, _parsed: &url::Url) -> Result<(Arc<dyn ObjectStore>, Path)> {
    Err(config(url, "this build has no S3 support (build the runtime with the cargo feature `s3`)"))
}
