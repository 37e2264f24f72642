//! The LMS-facing routes: render a block, call its handler, read a learner's
//! assignments and state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::{Identity, Role};
use super::error::ApiError;
use super::state::{AppState, read_body, wants_json};
use crate::ids::check_id;
use crate::model::Course;
use crate::request::{Masquerade, RenderOutput, RenderRequest, User, View};

/// `?view=`, `?format=`, and staff masquerade.
#[derive(Debug, Default, Deserialize)]
pub struct RenderQuery {
    pub view: Option<String>,
    pub format: Option<String>,
    /// Staff: see exactly what this learner sees (nothing is written).
    pub as_learner: Option<String>,
    /// Staff: see the page as these groups, `PARTITION:GROUP[,PARTITION:GROUP...]`.
    pub as_group: Option<String>,
}

/// Checks the path's ids (400 naming the id) and finds the course (404 naming it).
pub fn course_for(state: &AppState, course_key: &str) -> Result<Arc<Course>, ApiError> {
    check_id("course key", course_key).map_err(ApiError::from_host)?;
    state.host().course(course_key).map_err(ApiError::from_host)
}

/// 404 unless the course has the block.
pub fn check_block(course: &Course, usage_id: &str) -> Result<(), ApiError> {
    check_id("usage id", usage_id).map_err(ApiError::from_host)?;
    if course.block(usage_id).is_none() {
        return Err(ApiError::not_found(format!(
            "course {:?} has no block {usage_id:?}",
            course.key()
        )));
    }
    Ok(())
}

/// The host's user for a caller in a course.
pub fn user_for(identity: &Identity, role: Role) -> User {
    User {
        id: identity.claims.sub.clone(),
        username: identity.claims.display_name().to_string(),
        is_staff: role >= Role::Staff,
        is_anonymous: false,
    }
}

fn parse_groups(spec: &str) -> Result<BTreeMap<u64, u64>, ApiError> {
    spec.split(',')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (p, g) = pair.split_once(':').ok_or_else(|| {
                ApiError::bad_request(format!("as_group {pair:?} is not PARTITION:GROUP"))
            })?;
            let parse = |s: &str| {
                s.trim().parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("as_group {pair:?}: {s:?} is not a number"))
                })
            };
            Ok((parse(p)?, parse(g)?))
        })
        .collect()
}

/// What a render request asks for, checked: the caller may ask for it and it exists.
pub struct Checked {
    pub request: RenderRequest,
    pub role: Role,
}

/// Authorizes and builds a render request (shared with the workbench).
pub fn check_render(
    state: &AppState,
    identity: &Identity,
    course_key: &str,
    usage_id: &str,
    query: &RenderQuery,
    headers: &HeaderMap,
) -> Result<Checked, ApiError> {
    let course = course_for(state, course_key)?;
    let role = identity.require(course_key, Role::Learner)?;
    check_block(&course, usage_id)?;
    let view: View = match query.view.as_deref() {
        None | Some("") | Some("learner") => View::Student,
        Some(v) => v.parse().map_err(ApiError::bad_request)?,
    };
    if view != View::Student {
        identity.require(course_key, Role::Staff).map_err(|e| {
            ApiError::forbidden(format!("the {view:?} view is for staff: {}", e.message))
        })?;
    }
    let masquerade = match (&query.as_learner, &query.as_group) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "as_learner and as_group cannot be combined",
            ));
        }
        (Some(learner), None) => Some(Masquerade::Learner(learner.clone())),
        (None, Some(groups)) => Some(Masquerade::Groups(parse_groups(groups)?)),
        (None, None) => None,
    };
    if masquerade.is_some() {
        identity.require(course_key, Role::Staff).map_err(|e| {
            ApiError::forbidden(format!(
                "only staff may view as another learner or group: {}",
                e.message
            ))
        })?;
    }
    if let Some(Masquerade::Learner(learner)) = &masquerade {
        check_id("user id", learner).map_err(ApiError::from_host)?;
    }
    let mut request = RenderRequest::new(course_key, usage_id, user_for(identity, role), view);
    request.user_agent = super::bot_check::judged_user_agent(identity, headers);
    request.masquerade = masquerade;
    Ok(Checked { request, role })
}

/// Renders on the blocking pool and records the metrics.
pub async fn run_render(
    state: &AppState,
    request: RenderRequest,
) -> Result<RenderOutput, ApiError> {
    let (course_key, view) = (request.course_key.clone(), request.view);
    let started = Instant::now();
    let what = format!(
        "rendering {:?} of course {:?} for user {:?}",
        request.usage_id, request.course_key, request.user.id
    );
    let output = state
        .run_blocking(&what, state.render_limit(), move |host| {
            host.render(&request)
        })
        .await?;
    state
        .metrics()
        .record_render(&course_key, view, started.elapsed(), &output);
    Ok(output)
}

/// `GET /courses/{course_key}/blocks/{usage_id}`: the block for the signed-in user, as
/// an HTML page or (asked for JSON) the fields of `xbhost render --json`.
pub async fn render(
    State(state): State<AppState>,
    Path((course_key, usage_id)): Path<(String, String)>,
    Query(query): Query<RenderQuery>,
    headers: HeaderMap,
    identity: Result<Identity, ApiError>,
) -> Response {
    let json = wants_json(&headers, query.format.as_deref());
    let result = async {
        let identity = identity?;
        let checked = check_render(&state, &identity, &course_key, &usage_id, &query, &headers)?;
        let view = checked.request.view;
        let output = run_render(&state, checked.request).await?;
        Ok::<_, ApiError>((identity, view, output))
    }
    .await;
    match result {
        Ok((identity, view, output)) if json => {
            // A staff member viewing as a learner gets that learner's page, named so.
            let shown = query.as_learner.as_deref().unwrap_or(identity.user_id());
            let details = identity.require(&course_key, Role::Staff).is_ok();
            Json(output.summary(shown, view, details)).into_response()
        }
        Ok((identity, view, output)) => {
            let csrf = super::csrf::expected(state.keys(), &headers);
            super::page::block_page(
                &course_key,
                &usage_id,
                view,
                identity.user_id(),
                csrf.as_deref(),
                &output,
            )
            .into_response()
        }
        Err(e) => e.html(!json).into_response(),
    }
}

/// `POST /courses/{course_key}/blocks/{usage_id}/handler/{handler}`: JSON in, JSON out.
pub async fn handle(
    State(state): State<AppState>,
    Path((course_key, usage_id, handler)): Path<(String, String, String)>,
    headers: HeaderMap,
    identity: Result<Identity, ApiError>,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let identity = identity?;
    super::csrf::check(state.keys(), &headers, Some(identity.via), None)?;
    let course = course_for(&state, &course_key)?;
    let role = identity.require(&course_key, Role::Learner)?;
    check_block(&course, &usage_id)?;
    check_id("handler name", &handler).map_err(ApiError::from_host)?;
    let body = read_body(body, state.config().max_body_bytes, "--max-body-bytes").await?;
    let payload: serde_json::Value = if body.is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "the payload for handler {handler:?} of block {usage_id:?} is not JSON: {e}"
            ))
        })?
    };
    let user = user_for(&identity, role);
    // Judged as the same caller's render is: a bot's call assigns nothing, sends no event.
    let user_agent = super::bot_check::judged_user_agent(&identity, &headers);
    let what = format!(
        "handler {handler:?} of block {usage_id:?} for user {:?}",
        user.id
    );
    let metrics = state.metrics().clone();
    let block_type = course
        .block(&usage_id)
        .map(|b| b.def.block_type.clone())
        .unwrap_or_default();
    let learner_only = role < Role::Staff;
    let answer = state
        .run_blocking(&what, state.render_limit(), move |host| {
            let result = host.handle_from(
                &course_key,
                &usage_id,
                &user,
                user_agent.as_deref(),
                &handler,
                &payload,
            );
            let result = match result {
                Err(e) if learner_only => Err(kind_only(e)),
                other => other,
            };
            if let Err(e) = &result
                && let Some(failed) = crate::errors::find::<crate::errors::HandlerFailed>(e)
            {
                metrics.record_failure(&block_type, failed.kind);
            }
            result
        })
        .await?;
    Ok(Json(answer))
}

/// A failed handler as a learner is told of it: the block's own error message (what it
/// chose to say) as is, otherwise the failure kind only; the details go to the log.
fn kind_only(error: anyhow::Error) -> anyhow::Error {
    let Some(failed) = crate::errors::find::<crate::errors::HandlerFailed>(&error) else {
        return error;
    };
    if failed.kind == crate::request::FailureKind::BlockError {
        return error;
    }
    tracing::warn!(kind = ?failed.kind, "{}", failed.message);
    let kind = super::page::serde_name(&failed.kind);
    anyhow::Error::new(crate::errors::HandlerFailed {
        kind: failed.kind,
        message: format!("the block failed ({kind}); staff can see the details in the server log"),
    })
}

/// 403 unless the caller is `user_id` or staff of the course.
fn check_self_or_staff(
    identity: &Identity,
    course_key: &str,
    user_id: &str,
    what: &str,
) -> Result<(), ApiError> {
    if identity.user_id() == user_id {
        identity.require(course_key, Role::Learner)?;
        return Ok(());
    }
    identity.require(course_key, Role::Staff).map_err(|_| {
        ApiError::forbidden(format!(
            "user {:?} may not read {what} of user {user_id:?} in course {course_key:?} \
             (only their own, or as staff)",
            identity.user_id()
        ))
    })?;
    Ok(())
}

/// `GET /courses/{course_key}/users/{user_id}/assignments`: the learner's group in every
/// partition of the course (stored, or what they would get), as `xbhost assign` says.
pub async fn assignments(
    State(state): State<AppState>,
    Path((course_key, user_id)): Path<(String, String)>,
    identity: Result<Identity, ApiError>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let identity = identity?;
    let course = course_for(&state, &course_key)?;
    check_id("user id", &user_id).map_err(ApiError::from_host)?;
    check_self_or_staff(&identity, &course_key, &user_id, "the assignments")?;
    let partitions: Vec<u64> = course.partitions().iter().map(|p| p.id).collect();
    let what = format!("assignments of user {user_id:?} in course {course_key:?}");
    let views = state
        .run_blocking(&what, state.render_limit(), move |host| {
            partitions
                .into_iter()
                .map(|p| host.assignment(&course_key, p, &user_id))
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .await?;
    Ok(Json(
        serde_json::to_value(views).expect("assignments serialize"),
    ))
}

/// `GET /courses/{course_key}/users/{user_id}/state/{usage_id}`: what a block stored for
/// a learner (`null` when nothing).
pub async fn user_state(
    State(state): State<AppState>,
    Path((course_key, user_id, usage_id)): Path<(String, String, String)>,
    identity: Result<Identity, ApiError>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let identity = identity?;
    let course = course_for(&state, &course_key)?;
    check_id("user id", &user_id).map_err(ApiError::from_host)?;
    check_block(&course, &usage_id)?;
    check_self_or_staff(&identity, &course_key, &user_id, "the state")?;
    let stored = state
        .host()
        .storage()
        .user_state(&course_key, &user_id, &usage_id)
        .map_err(ApiError::from_host)?;
    let value = match stored {
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            ApiError::from_host(anyhow::anyhow!(
                "stored state of block {usage_id:?} for user {user_id:?} is not JSON: {e}"
            ))
        })?,
        None => serde_json::Value::Null,
    };
    Ok(Json(serde_json::json!({
        "course_key": course_key,
        "user": user_id,
        "usage_id": usage_id,
        "state": value,
    })))
}

/// The report reads the whole event log: minutes, not a render's deadline.
const REPORT_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Debug, Default, Deserialize)]
pub struct ReportQuery {
    pub format: Option<String>,
}

/// `GET /courses/{course_key}/report`: the experiment report (staff): learners per
/// group, the sample ratio test, goals per group; a page, or JSON when asked.
pub async fn report(
    State(state): State<AppState>,
    Path(course_key): Path<String>,
    Query(query): Query<ReportQuery>,
    headers: HeaderMap,
    identity: Result<Identity, ApiError>,
) -> Response {
    let json = wants_json(&headers, query.format.as_deref());
    let result = async {
        let identity = identity?;
        course_for(&state, &course_key)?;
        identity.require(&course_key, Role::Staff)?;
        let events = state.config().events_file.clone();
        let key = course_key.clone();
        let what = format!("the experiment report of course {course_key:?}");
        let heavy = state.heavy_slot(&what).await?;
        let mut report = state
            .run_blocking(&what, REPORT_LIMIT, move |host| {
                let _heavy = heavy;
                host.report(&key, &events)
            })
            .await?;
        // The log's name, not where it is on the server.
        report.events_source = std::path::Path::new(&report.events_source)
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok::<_, ApiError>(report)
    }
    .await;
    match result {
        Ok(report) if json => Json(report).into_response(),
        Ok(report) => axum::response::Html(report.to_html()).into_response(),
        Err(e) => e.html(!json).into_response(),
    }
}
