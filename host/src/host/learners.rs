//! Learners: rendering a block for a user (bots, masquerade, reachability), handlers,
//! visible children, grades, cohorts, enrollment dates and carrying an anonymous visitor's
//! groups over on sign-in.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Serialize;
use tracing::info;

use super::Host;
use crate::assignment;
use crate::grading::{self, GradeReport};
use crate::ids::check_id;
use crate::model::{Course, Group};
use crate::request::{FailureKind, Masquerade, RenderOutput, RenderRequest, User, View};
use crate::session::{Audience, Mode, Session};

/// One partition of an anonymous visitor carried over to a user.
#[derive(Debug, Clone, Serialize)]
pub struct CarriedOver {
    pub course_key: String,
    pub partition_id: u64,
    /// The visitor's group.
    pub session_group: String,
    /// The user's group afterwards.
    pub user_group: String,
    /// True when the user had no group and got the visitor's.
    pub carried: bool,
}

impl Host {
    /// Checks the user id and finds the course and the block (its index), or says which
    /// one is unknown.
    pub(crate) fn locate(
        &self,
        course_key: &str,
        usage_id: &str,
        user_id: &str,
    ) -> Result<(Arc<Course>, usize)> {
        check_id("user id", user_id)?;
        let course = self.course(course_key)?;
        let index = course
            .block(usage_id)
            .ok_or_else(|| crate::errors::NotFound {
                what: "block",
                id: usage_id.to_string(),
                within: Some(course_key.to_string()),
            })?
            .index;
        Ok((course, index))
    }

    /// [`Host::render`] on a worker thread, waited for at most the request deadline plus
    /// the outer grace. Epoch interruption stops blocks that run too long; this bounds a
    /// request whose host calls are stuck (for example on storage). A request that does
    /// not finish in time is an error; its worker is left to finish on its own and its
    /// late result is dropped.
    pub fn render_bounded(&self, request: &RenderRequest) -> Result<RenderOutput> {
        let limit: Duration = self.limits().request_deadline + self.limits().outer_grace;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (host, req) = (self.clone(), request.clone());
        let current = tracing::Span::current();
        std::thread::Builder::new()
            .name("xbhost-render".into())
            .stack_size(crate::runtime::limits::RENDER_STACK_BYTES)
            .spawn(move || {
                let _entered = current.enter();
                let _ = tx.send(host.render(&req));
            })
            .context("starting a render worker")?;
        match rx.recv_timeout(limit) {
            Ok(result) => result,
            Err(_) => {
                tracing::error!(
                    course = %request.course_key,
                    usage_id = %request.usage_id,
                    user = %request.user.id,
                    "render did not finish within {} ms; abandoned",
                    limit.as_millis()
                );
                bail!(
                    "rendering {:?} of course {:?} for user {:?} did not finish within {} ms",
                    request.usage_id,
                    request.course_key,
                    request.user.id,
                    limit.as_millis()
                )
            }
        }
    }

    /// Renders a block for a user.
    pub fn render(&self, request: &RenderRequest) -> Result<RenderOutput> {
        let span = tracing::info_span!(
            "render",
            course = %request.course_key,
            usage_id = %request.usage_id,
            user = %request.user.id,
            view = ?request.view
        );
        let _entered = span.enter();
        if request.view != View::Student && !request.user.is_staff {
            return Err(crate::errors::Forbidden(format!(
                "user {:?} is not staff: the {:?} view is for staff only",
                request.user.id, request.view
            ))
            .into());
        }
        let (course, block) =
            self.locate(&request.course_key, &request.usage_id, &request.user.id)?;
        // Masquerading staff see the course as chosen and write nothing: no assignment,
        // no state, no event (a read-only session).
        let (user, view, mode, audience) = match &request.masquerade {
            None => (
                request.user.clone(),
                request.view,
                Mode::Live,
                Audience {
                    is_bot: self.is_bot(request.user_agent.as_deref()),
                    ..Audience::default()
                },
            ),
            Some(_) if !request.user.is_staff => {
                return Err(crate::errors::Forbidden(format!(
                    "user {:?} is not staff: only staff may view as another learner or group",
                    request.user.id
                ))
                .into());
            }
            Some(Masquerade::Learner(id)) => {
                check_id("user id", id)?;
                (
                    User::learner(id),
                    View::Student,
                    Mode::ReadOnly,
                    Audience::default(),
                )
            }
            Some(Masquerade::Groups(groups)) => {
                for (partition, group) in groups {
                    if course
                        .partition(*partition)
                        .and_then(|p| p.group(*group))
                        .is_none()
                    {
                        return Err(crate::errors::NotFound {
                            what: "group",
                            id: format!("{group} (user partition {partition})"),
                            within: Some(request.course_key.clone()),
                        }
                        .into());
                    }
                }
                (
                    request.user.clone(),
                    View::Student,
                    Mode::ReadOnly,
                    Audience {
                        is_bot: false,
                        viewed_as: groups.clone(),
                    },
                )
            }
        };
        let session =
            Session::for_audience(&self.inner.handle, course.clone(), user, mode, audience);
        // A learner who names a block they cannot reach (another group's condition, a
        // restricted unit's content) gets it hidden, as they would inside its page.
        let fragment = match session.reachable(block) {
            Ok(true) => session.render_block(block, 0, view, None),
            Ok(false) => crate::session::HostFragment {
                hidden: true,
                ..Default::default()
            },
            Err(e) => {
                session.finish()?;
                return Err(e);
            }
        };
        let finished = session.finish()?;
        Ok(RenderOutput {
            user: request.user.id.clone(),
            html: if fragment.hidden {
                String::new()
            } else {
                fragment.html
            },
            hidden: fragment.hidden,
            title: fragment.title,
            icon: fragment.icon,
            tooltip: fragment.tooltip,
            visible_blocks: finished.visible_blocks,
            assignments: finished.assignments,
            experiments: finished.experiments,
            failures: finished.failures,
            events: finished.events,
            printed: finished.printed,
        })
    }

    /// The children of a block this learner sees (through the block's `visible-children`).
    pub fn visible_children(
        &self,
        course_key: &str,
        usage_id: &str,
        user: &User,
    ) -> Result<Vec<String>> {
        let (course, block) = self.locate(course_key, usage_id, &user.id)?;
        let session = Session::new(&self.inner.handle, course.clone(), user.clone(), Mode::Live);
        let children = session.call(
            block,
            0,
            |guest, store| guest.call_visible_children(store),
            |_| Ok(()),
        );
        // Finish on every path: the call may have assigned a group.
        session.finish()?;
        children.map_err(|f| {
            anyhow!(
                "block {:?} ({}) failed: {}",
                f.usage_id,
                f.block_type,
                f.error
            )
        })
    }

    /// Whether a request with this User-Agent comes from a bot (by the configured
    /// patterns), logged when it does. Renders and handler calls ask the same question,
    /// so a bot gets the same groups, assignments and events (none) from both.
    fn is_bot(&self, user_agent: Option<&str>) -> bool {
        let is_bot = self.inner.bots.is_bot(user_agent);
        if is_bot {
            info!(user_agent = ?user_agent, "request from a bot: control groups, nothing assigned, no events");
        }
        is_bot
    }

    /// Calls a block's handler for a user: JSON in, JSON out. The block's writes are stored
    /// only if the handler succeeds. No User-Agent is judged: see [`Host::handle_from`].
    pub fn handle(
        &self,
        course_key: &str,
        usage_id: &str,
        user: &User,
        handler: &str,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        self.handle_from(course_key, usage_id, user, None, handler, payload)
    }

    /// [`Host::handle`] for a request with this User-Agent, judged as a render's is: a
    /// bot's call runs with the bot's control groups (a block of another group is not
    /// available to it), assigns and selects nothing and sends no event; the block's own
    /// state is stored as on a bot's render.
    pub fn handle_from(
        &self,
        course_key: &str,
        usage_id: &str,
        user: &User,
        user_agent: Option<&str>,
        handler: &str,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        let (course, block) = self.locate(course_key, usage_id, &user.id)?;
        let audience = Audience {
            is_bot: self.is_bot(user_agent),
            ..Audience::default()
        };
        let session = Session::for_audience(
            &self.inner.handle,
            course.clone(),
            user.clone(),
            Mode::Live,
            audience,
        );
        // Whatever happens, finish the session: checking access may have assigned a group,
        // whose event must go out and whose write must be flushed.
        let reachable = session.reachable(block);
        let answer = match reachable {
            Ok(true) => {
                let payload = payload.to_string();
                let max = self.limits().max_answer_bytes;
                // An answer the host refuses fails the call: none of its writes or events
                // are kept, as for a trap.
                Some(session.call(
                    block,
                    0,
                    |guest, store| guest.call_handle(store, handler, &payload),
                    |answer: &String| {
                        if answer.len() > max {
                            return Err((
                                FailureKind::OutputTooLarge,
                                format!(
                                    "its answer is {} bytes, over the limit of {max}",
                                    answer.len()
                                ),
                            ));
                        }
                        serde_json::from_str::<serde::de::IgnoredAny>(answer)
                            .map(|_| ())
                            .map_err(|e| {
                                (
                                    FailureKind::BlockError,
                                    format!("its answer is not JSON: {e}"),
                                )
                            })
                    },
                ))
            }
            _ => None,
        };
        session.finish()?;
        let Some(answer) = answer else {
            reachable?;
            return Err(crate::errors::Forbidden(format!(
                "block {usage_id:?} of course {course_key:?} is not available to user {:?}",
                user.id
            ))
            .into());
        };
        let answer = answer.map_err(|f| crate::errors::HandlerFailed {
            kind: f.kind,
            message: format!(
                "handler {handler:?} of block {usage_id:?} ({}) failed: {}",
                f.block_type, f.error
            ),
        })?;
        serde_json::from_str(&answer).with_context(|| {
            format!("handler {handler:?} of block {usage_id:?} answered something that is not JSON")
        })
    }

    /// Grades learners over the problems each of them sees: one learner, or every learner
    /// with data in the course. Writes nothing.
    pub fn grades(&self, course_key: &str, user: Option<&str>) -> Result<GradeReport> {
        let course = self.course(course_key)?;
        let users = match user {
            Some(u) => {
                check_id("user id", u)?;
                vec![u.to_string()]
            }
            None => self.inner.handle.storage.course_users(course_key)?,
        };
        let all = course_problems(&course);
        let mut learners = Vec::new();
        for id in users {
            let session = Session::with_deadline(
                &self.inner.handle,
                course.clone(),
                User::learner(&id),
                Mode::ReadOnly,
                GRADING_BUDGET,
            );
            let grade = grading::grade_learner(&session);
            if !grade.ungradable.is_empty() {
                tracing::warn!(course = %course_key, user = %id, blocks = grade.ungradable.len(), "some blocks could not be graded");
            }
            learners.push(grade);
        }
        Ok(GradeReport {
            course_key: course_key.to_string(),
            problems: all,
            learners,
        })
    }

    /// Puts a learner in a group of a cohort (non-random) partition. Random partitions are
    /// only ever assigned by the sampling authority.
    pub fn set_cohort(
        &self,
        course_key: &str,
        partition_id: u64,
        user_id: &str,
        group_id: u64,
    ) -> Result<Group> {
        check_id("user id", user_id)?;
        let course = self.course(course_key)?;
        let partition = course
            .partition(partition_id)
            .ok_or_else(|| super::unknown_partition(course_key, partition_id))?;
        if partition.is_random() {
            bail!(
                "user partition {partition_id} ({:?}) is a random experiment: learners are assigned by the host, not by staff",
                partition.name
            );
        }
        let group = partition
            .group(group_id)
            .ok_or_else(|| {
                anyhow!(
                    "user partition {partition_id} ({:?}) has no group {group_id}",
                    partition.name
                )
            })?
            .clone();
        self.inner.handle.storage.set_course_tag(
            course_key,
            user_id,
            &assignment::partition_tag_key(partition_id),
            &group_id.to_string(),
        )?;
        self.inner.handle.storage.flush()?;
        info!(course = %course_key, partition = partition_id, user = %user_id, group = group_id, "learner put in cohort group");
        Ok(group)
    }

    /// On sign-in or account creation: carries an anonymous visitor's groups (every
    /// course) over to the user, where the user has none; the user's own groups win. The
    /// visitor's groups are removed either way, so nobody is counted twice.
    pub fn refresh_identifier(&self, session_id: &str, user_id: &str) -> Result<Vec<CarriedOver>> {
        check_id("session id", session_id)?;
        check_id("user id", user_id)?;
        let visitor = User::anonymous(session_id);
        let mut out = Vec::new();
        for key in self.course_keys()? {
            let course = self.course(&key)?;
            if course.partitions().is_empty() {
                continue;
            }
            let session = Session::for_experiments(
                &self.inner.handle,
                course.clone(),
                User::learner(user_id),
                Mode::Live,
            );
            let carried = session.carry_over_from(&visitor.id)?;
            session.finish()?;
            for tag in carried {
                let Some(partition) = assignment::partition_of_tag(&tag.key) else {
                    continue;
                };
                out.push(CarriedOver {
                    course_key: key.clone(),
                    partition_id: partition,
                    session_group: tag.from_value,
                    user_group: tag.to_value,
                    carried: tag.carried,
                });
            }
        }
        info!(session = %session_id, user = %user_id, partitions = out.len(), "identifier refreshed");
        Ok(out)
    }

    /// Records course enrollment dates (user id, date) for the enrollment windows of a
    /// course's experiments. Every line is checked first; nothing is stored if one is bad.
    pub fn set_enrollments(&self, course_key: &str, dates: &[(String, String)]) -> Result<usize> {
        self.course(course_key)?;
        let mut canonical = Vec::with_capacity(dates.len());
        for (user, date) in dates {
            check_id("user id", user)?;
            let time = crate::experiment::parse_date(date)
                .with_context(|| format!("enrollment date of user {user:?}"))?;
            canonical.push((user.clone(), crate::experiment::format_date(time)));
        }
        self.inner
            .handle
            .storage
            .set_enrollments(course_key, &canonical)?;
        self.inner.handle.storage.flush()?;
        Ok(canonical.len())
    }
}

/// Every graded block of the course, in course order (depth first from the roots).
fn course_problems(course: &Course) -> Vec<String> {
    course
        .roots()
        .flat_map(|root| grading::problems_under(course, root))
        .collect()
}

/// How long grading one learner may take (it walks the whole course).
const GRADING_BUDGET: Duration = Duration::from_secs(30);
