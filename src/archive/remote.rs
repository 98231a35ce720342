//! An archive in object storage (`path: s3://bucket/prefix`, any S3-compatible endpoint):
//! files are written in a local staging folder as for a local archive, and each finished file
//! is uploaded under the same key (`table=spans/date=…/hour=…/part-….parquet`), then removed
//! from staging. An upload that fails leaves the file staged, tried again at the next flush
//! and at the next start: nothing written is lost while the store is away. Readers
//! (`fleetpipe report`, `query --archive`) keep a local copy of the store's files, fetching
//! only those they do not have yet (finished files never change).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::ArchiveError;
use super::files::finished_files;
use crate::config::Problem;

/// The URL scheme of an archive in S3-compatible object storage.
const S3: &str = "s3://";

/// How an archive in object storage is reached; unset keys are taken from the environment
/// (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_ALLOW_HTTP`), as the AWS tools do.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectStoreSettings {
    /// An S3-compatible endpoint (MinIO, Ceph, R2, …); AWS's when unset.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allows an `http://` endpoint.
    pub allow_http: bool,
    /// Where files are written before they are uploaded.
    pub staging: Option<PathBuf>,
}

/// An archive location: a folder, or a bucket and prefix in object storage.
pub(super) enum Location {
    Folder,
    Bucket { bucket: String, prefix: String },
}

impl Location {
    pub(super) fn of(path: &Path) -> Location {
        let text = path.to_string_lossy();
        match text.strip_prefix(S3) {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                Location::Bucket {
                    bucket: bucket.to_owned(),
                    prefix: prefix.trim_matches('/').to_owned(),
                }
            }
            None => Location::Folder,
        }
    }
}

/// Whether `path` is in object storage: a data flow off this host.
pub(super) fn in_object_storage(path: &Path) -> bool {
    matches!(Location::of(path), Location::Bucket { .. })
}

/// Problems of an object-store location, at their keys.
pub(super) fn problems(path: &Path, settings: &ObjectStoreSettings) -> Vec<Problem> {
    match Location::of(path) {
        Location::Bucket { bucket, .. } if bucket.is_empty() => {
            vec![Problem::new("path", "names no bucket: use s3://bucket/prefix")]
        }
        Location::Folder if settings.endpoint.is_some() || settings.staging.is_some() => vec![Problem::new(
            "object_store",
            "applies only to an archive in object storage (path: s3://bucket/prefix)",
        )],
        _ => Vec::new(),
    }
}

/// The uploads of a writer whose archive is in object storage.
pub(super) struct Uploader {
    store: Arc<AmazonS3>,
    bucket: String,
    prefix: String,
    staging: PathBuf,
}

impl Uploader {
    /// For `path`, `None` when the archive is a folder; else the store and the staging
    /// folder files are written in first.
    pub(super) fn new(path: &Path, settings: &ObjectStoreSettings) -> Result<Option<Uploader>, ArchiveError> {
        let Location::Bucket { bucket, prefix } = Location::of(path) else {
            return Ok(None);
        };
        let staging = settings.staging.clone().unwrap_or_else(|| {
            PathBuf::from("fleetpipe-data/archive-staging")
                .join(&bucket)
                .join(&prefix)
        });
        Ok(Some(Uploader {
            store: Arc::new(store(path, &bucket, settings)?),
            bucket,
            prefix,
            staging,
        }))
    }

    /// Where the writer writes.
    pub(super) fn staging(&self) -> &Path {
        &self.staging
    }

    /// Uploads what is finished every `every`, on a task of its own so that the writer never
    /// waits on the network; once `writer_done` fires (or its writer is gone), a last time.
    pub(super) async fn run(self, exporter: String, every: Duration, mut writer_done: oneshot::Receiver<()>) {
        let mut ticker = tokio::time::interval(every);
        let mut failing = false;
        loop {
            let last = tokio::select! {
                _ = ticker.tick() => false,
                _ = &mut writer_done => true,
            };
            match self.upload_finished().await {
                Ok(uploaded) if failing && uploaded > 0 => {
                    failing = false;
                    tracing::info!(%exporter, files = uploaded, "The archive's uploads go through again.");
                }
                Ok(_) => {}
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%exporter, %error, staging = %self.staging.display(),
                        "Could not upload to the archive's object store; files wait in staging and are tried again.");
                }
                Err(_) => {}
            }
            if last {
                break;
            }
        }
    }

    /// Uploads every finished file of the staging folder, removing each once stored. How many
    /// went, and the first failure (the others wait for the next try).
    async fn upload_finished(&self) -> Result<usize, ArchiveError> {
        let mut uploaded = 0;
        for file in finished_files(&self.staging) {
            let key = self.key_of(&file);
            let bytes = tokio::fs::read(&file).await.map_err(|source| ArchiveError::Io {
                path: file.clone(),
                source,
            })?;
            self.store
                .put(&key, PutPayload::from(bytes))
                .await
                .map_err(|source| ArchiveError::ObjectStore {
                    location: format!("{S3}{}/{key}", self.bucket),
                    source,
                })?;
            tokio::fs::remove_file(&file)
                .await
                .map_err(|source| ArchiveError::Io { path: file, source })?;
            uploaded += 1;
        }
        Ok(uploaded)
    }

    fn key_of(&self, file: &Path) -> ObjectPath {
        let relative = file.strip_prefix(&self.staging).unwrap_or(file);
        let relative = relative.to_string_lossy();
        if self.prefix.is_empty() {
            ObjectPath::from(relative.as_ref())
        } else {
            ObjectPath::from(format!("{}/{relative}", self.prefix))
        }
    }
}

fn store(path: &Path, bucket: &str, settings: &ObjectStoreSettings) -> Result<AmazonS3, ArchiveError> {
    // A store that is away fails an attempt within seconds: the uploads try again at every
    // flush anyway, and a reader should say so rather than wait minutes.
    let retry = RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 2,
        retry_timeout: Duration::from_secs(10),
    };
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_retry(retry);
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(region) = &settings.region {
        builder = builder.with_region(region);
    }
    if let Some(key) = &settings.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &settings.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    if settings.allow_http {
        builder = builder.with_allow_http(true);
    }
    builder.build().map_err(|source| ArchiveError::ObjectStore {
        location: path.to_string_lossy().into_owned(),
        source,
    })
}

/// A folder holding the archive at `path`: `path` itself, or for object storage a local copy
/// (`fleetpipe-data/archive-cache/<bucket>/<prefix>`) brought up to date: files the store has
/// and the copy lacks are fetched, files the store no longer has are removed.
pub(super) async fn local_copy(path: &Path) -> Result<PathBuf, ArchiveError> {
    let Location::Bucket { bucket, prefix } = Location::of(path) else {
        return Ok(path.to_owned());
    };
    let store = store(path, &bucket, &ObjectStoreSettings::default())?;
    let copy = PathBuf::from("fleetpipe-data/archive-cache")
        .join(&bucket)
        .join(&prefix);
    let failed = |source| ArchiveError::ObjectStore {
        location: path.to_string_lossy().into_owned(),
        source,
    };
    let root = (!prefix.is_empty()).then(|| ObjectPath::from(prefix.as_str()));
    let objects: Vec<_> = store.list(root.as_ref()).try_collect().await.map_err(failed)?;
    let mut present = std::collections::BTreeSet::new();
    for object in objects {
        let key = object.location.as_ref();
        let relative = key.strip_prefix(prefix.as_str()).unwrap_or(key).trim_start_matches('/');
        if !relative.ends_with(".parquet") {
            continue;
        }
        let local = copy.join(relative);
        present.insert(local.clone());
        if std::fs::metadata(&local).is_ok_and(|m| m.len() == object.size) {
            continue;
        }
        let bytes = store
            .get(&object.location)
            .await
            .map_err(failed)?
            .bytes()
            .await
            .map_err(failed)?;
        let io = |source| ArchiveError::Io {
            path: local.clone(),
            source,
        };
        if let Some(folder) = local.parent() {
            std::fs::create_dir_all(folder).map_err(io)?;
        }
        std::fs::write(&local, &bytes).map_err(io)?;
    }
    for stale in finished_files(&copy).into_iter().filter(|f| !present.contains(f)) {
        let _ = std::fs::remove_file(stale);
    }
    std::fs::create_dir_all(&copy).map_err(|source| ArchiveError::Io {
        path: copy.clone(),
        source,
    })?;
    Ok(copy)
}
