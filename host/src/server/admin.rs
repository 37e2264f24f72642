//! Admin uploads: plugins (admins of every course) and courses (admins of that course,
//! named in the query so the role is checked before the body is read).

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
use crate::ids::check_id;
use crate::model::CourseDoc;
use crate::olx::{ImportOptions, LoadDeadline};

/// Compiling a large plugin takes a while (a course upload has its own deadline).
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
    let heavy = state.heavy_slot("installing a plugin").await?;
    let wasm = read_body(body, state.config().max_upload_bytes, "--max-upload-bytes").await?;
    if wasm.is_empty() {
        return Err(ApiError::bad_request("the plugin upload is empty"));
    }
    let who = identity.user_id().to_string();
    let record = state
        .run_blocking_as("installing a plugin", UPLOAD_LIMIT, move |host| {
            let _heavy = heavy;
            let record = host
                .add_plugin(&wasm, query.name.as_deref())
                .context("the uploaded plugin was not installed")?;
            tracing::info!(plugin = %record.name, version = %record.version, by = %who, "plugin uploaded");
            // Its scenarios (and those a new container makes loadable): what is not shown
            // and why goes in the answer; the plugin is installed either way.
            let scenarios = host.load_scenarios().unwrap_or_else(|e| {
                tracing::warn!(plugin = %record.name, error = %format!("{e:#}"), "scenarios not loaded");
                Default::default()
            });
            Ok((record, scenarios))
        }, ApiError::from_upload)
        .await?;
    let (record, scenarios) = record;
    let (status, Json(mut answer)) = created(&record);
    answer["scenarios"] = serde_json::to_value(&scenarios).expect("reports serialize");
    Ok((status, Json(answer)))
}

#[derive(Debug, Default, Deserialize)]
pub struct CourseQuery {
    /// The course the upload is for: its admin role is checked before the body is read.
    pub course: Option<String>,
    /// The stored version the upload replaces (0: none, the course must be new): the
    /// course is stored only if the store still holds it, else 409 naming both versions.
    /// Without it, the upload replaces the version stored when its load began.
    pub version: Option<u64>,
}

/// `POST /admin/courses?course=KEY[&version=N]`: a course document (`application/json`) or an Open
/// edX export (`application/gzip`, a `.tar.gz`) for course KEY. The uploader's admin role
/// for KEY is checked before a byte of the body is read; the body is then read, parsed and
/// loaded in a render slot, within the import limits and the load deadline
/// (`--load-deadline-ms`). A document for another course is refused; an export is
/// imported under KEY. Validated whole; nothing is stored on error.
pub async fn upload_course(
    State(state): State<AppState>,
    Query(query): Query<CourseQuery>,
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
    let base = query.version.map(|v| (v > 0).then_some(v));
    let key = query.course.ok_or_else(|| {
        ApiError::bad_request(
            "say which course the upload is for: POST /admin/courses?course=COURSE_KEY \
             (the uploader's admin role for it is checked before the body is read)",
        )
    })?;
    check_id("course key", &key).map_err(|e| ApiError::bad_request(format!("?course: {e}")))?;
    identity.require(&key, Role::Admin)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let format = if content_type.starts_with("application/json") {
        Upload::Document
    } else if content_type.starts_with("application/gzip")
        || content_type.starts_with("application/x-gzip")
        || content_type.starts_with("application/x-tar")
    {
        Upload::Export
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "cannot load a course from {content_type:?}: send application/json (a course \
                 document) or application/gzip (an Open edX export .tar.gz)"
            ),
        ));
    };
    let heavy = state.heavy_slot("loading a course").await?;
    let body = read_body(body, state.config().max_upload_bytes, "--max-upload-bytes").await?;
    let limits = state.config().import_limits.clone();
    // The work stops itself at the deadline; the slot waits a little longer for it.
    let bound = limits.deadline + Duration::from_secs(5);
    let who = identity.user_id().to_string();
    let report = state
        .run_blocking_as(
            "loading a course",
            bound,
            move |host| {
                let _heavy = heavy;
                let deadline = LoadDeadline::after(limits.deadline);
                let (doc, mut import) = match read_upload(&body, format, &key, limits, deadline) {
                    Ok(read) => read,
                    Err(refused) => return Ok(Err(refused)),
                };
                let base = match base {
                    Some(base) => base,
                    None => host.course_version(&key)?,
                };
                let loaded = match import.as_mut() {
                    Some(import) => host.load_imported(doc, base, deadline, import),
                    None => host.load_course_from(doc, base, deadline),
                };
                let report = loaded.with_context(|| format!("course {key:?} was not loaded"))?;
                tracing::info!(course = %key, by = %who, "course uploaded");
                Ok(Ok((report, import)))
            },
            ApiError::from_upload,
        )
        .await??;
    let (report, import) = report;
    let (status, Json(mut answer)) = created(&report);
    // An export's import report: what learners will miss, per block type, and warnings.
    if let Some(import) = import {
        answer["import"] = serde_json::to_value(&import).expect("reports serialize");
    }
    Ok((status, Json(answer)))
}

/// What a course upload holds.
#[derive(Debug, Clone, Copy)]
enum Upload {
    /// A course document (JSON).
    Document,
    /// An Open edX export (`.tar.gz`).
    Export,
}

/// The course document of an upload for course `key`, and for an export its import
/// report; a body that is not one is the uploader's fault (400).
fn read_upload(
    body: &[u8],
    format: Upload,
    key: &str,
    limits: crate::olx::ImportLimits,
    deadline: LoadDeadline,
) -> Result<(CourseDoc, Option<crate::olx::ImportReport>), ApiError> {
    match format {
        Upload::Document => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("the course document is not UTF-8"))?;
            let doc = CourseDoc::from_json(text).map_err(|e| {
                ApiError::bad_request(format!("the course document is invalid: {e:#}"))
            })?;
            if doc.course_key != key {
                return Err(ApiError::bad_request(format!(
                    "the course document is for course {:?}, but the upload is for course \
                     {key:?} (?course=): they must be the same",
                    doc.course_key
                )));
            }
            Ok((doc, None))
        }
        Upload::Export => {
            let options = ImportOptions {
                course_key: Some(key.to_string()),
                limits,
            };
            crate::olx::read_course_archive(body, "the uploaded archive", &options, deadline)
                .map(|(doc, report)| (doc, Some(report)))
                .map_err(|e| {
                    ApiError::bad_request(format!("the uploaded export is invalid: {e:#}"))
                })
        }
    }
}

fn created(value: &impl serde::Serialize) -> (StatusCode, Json<serde_json::Value>) {
    let value = serde_json::to_value(value).expect("records and reports serialize");
    (StatusCode::CREATED, Json(value))
}
