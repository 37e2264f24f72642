//! Admin uploads: plugins (admins of every course) and courses (admins of that course).

use std::time::Duration;

use anyhow::Context;
use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;

use super::auth::{Identity, Role};
use super::error::ApiError;
use super::state::{AppState, read_body};
use crate::model::CourseDoc;

/// Compiling a large plugin or importing a large course takes a while.
const UPLOAD_LIMIT: Duration = Duration::from_secs(300);

#[derive(Debug, Default, Deserialize)]
pub struct PluginQuery {
    /// Install under this name instead of the one the plugin declares.
    pub name: Option<String>,
}

/// `POST /admin/plugins[?name=NAME]`, the body a component: checked, compiled, stored,
/// and used by every later render (the workbench's "load plugin").
pub async fn upload_plugin(
    State(state): State<AppState>,
    Query(query): Query<PluginQuery>,
    headers: HeaderMap,
    identity: Result<Identity, ApiError>,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let identity = identity?;
    super::csrf::check(state.keys(), &headers, Some(identity.via), None)?;
    identity.require_global_admin()?;
    let wasm = read_body(body, state.config().max_upload_bytes, "--max-upload-bytes").await?;
    if wasm.is_empty() {
        return Err(ApiError::bad_request("the plugin upload is empty"));
    }
    let who = identity.user_id().to_string();
    let record = state
        .run_blocking_as("installing a plugin", UPLOAD_LIMIT, move |host| {
            let record = host
                .add_plugin(&wasm, query.name.as_deref())
                .context("the uploaded plugin was not installed")?;
            tracing::info!(plugin = %record.name, version = %record.version, by = %who, "plugin uploaded");
            Ok(record)
        }, ApiError::from_upload)
        .await?;
    Ok(created(&record))
}

/// `POST /admin/courses`: a course document (`application/json`) or an Open edX export
/// (`application/gzip`, a `.tar.gz`). Validated whole; nothing is stored on error.
pub async fn upload_course(
    State(state): State<AppState>,
    headers: HeaderMap,
    identity: Result<Identity, ApiError>,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let identity = identity?;
    super::csrf::check(state.keys(), &headers, Some(identity.via), None)?;
    if !identity.claims.roles.values().any(|r| *r == Role::Admin) {
        return Err(ApiError::forbidden(format!(
            "user {:?} is not an admin of any course",
            identity.user_id()
        )));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let body = read_body(body, state.config().max_upload_bytes, "--max-upload-bytes").await?;
    let doc = if content_type.starts_with("application/json") {
        let text = std::str::from_utf8(&body)
            .map_err(|_| ApiError::bad_request("the course document is not UTF-8"))?;
        CourseDoc::from_json(text)
            .map_err(|e| ApiError::bad_request(format!("the course document is invalid: {e:#}")))?
    } else if content_type.starts_with("application/gzip")
        || content_type.starts_with("application/x-gzip")
        || content_type.starts_with("application/x-tar")
    {
        read_olx(&state, &body).await?
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "cannot load a course from {content_type:?}: send application/json (a course \
                 document) or application/gzip (an Open edX export .tar.gz)"
            ),
        ));
    };
    identity.require(&doc.course_key, Role::Admin)?;
    let key = doc.course_key.clone();
    let who = identity.user_id().to_string();
    let report = state
        .run_blocking_as(
            "loading a course",
            UPLOAD_LIMIT,
            move |host| {
                let report = host
                    .load_course(doc)
                    .with_context(|| format!("course {key:?} was not loaded"))?;
                tracing::info!(course = %key, by = %who, "course uploaded");
                Ok(report)
            },
            ApiError::from_upload,
        )
        .await?;
    Ok(created(&report))
}

fn created(value: &impl serde::Serialize) -> (StatusCode, Json<serde_json::Value>) {
    let value = serde_json::to_value(value).expect("records and reports serialize");
    (StatusCode::CREATED, Json(value))
}

/// Reads an uploaded export: staged as a file in the data directory (the importer reads
/// archives from disk), removed afterwards whatever happens. Staging failures are ours
/// (500); an export that does not read is the uploader's (400).
async fn read_olx(state: &AppState, body: &[u8]) -> Result<CourseDoc, ApiError> {
    let dir = state.config().data_dir.join("uploads");
    let path = dir.join(format!("{}.tar.gz", super::csrf::new_nonce()));
    let body = body.to_vec();
    let staged = tokio::task::spawn_blocking(move || {
        let result = std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(&path, &body))
            .with_context(|| format!("staging the upload as {}", path.display()));
        let read =
            result.map(|_| crate::olx::read_course(&path, &crate::olx::ImportOptions::default()));
        let _ = std::fs::remove_file(&path);
        read
    })
    .await
    .map_err(|e| ApiError::from_host(anyhow::anyhow!("reading the export failed: {e}")))?;
    match staged {
        Err(staging) => Err(ApiError::from_host(staging)),
        Ok(Err(invalid)) => Err(ApiError::bad_request(format!(
            "the uploaded export is invalid: {invalid:#}"
        ))),
        Ok(Ok((doc, _))) => Ok(doc),
    }
}
