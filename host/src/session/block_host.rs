//! The session as blocks reach it: [`BlockHost`] for [`Session`], each import a thin
//! call into the capability that owns it (tags, assignments, child rendering, user state,
//! events). Child rendering is the one import with logic of its own: the host checks the
//! child, writes the marks the course's structure gives it, shows a learner only their own
//! condition, and sends the exposure when a condition reached the page.

use std::sync::Arc;

use super::children;
use super::render::Session;
use super::request::internal;
use super::{sources, tallies, user_state};
use crate::model::{Course, Group};
use crate::request::{User, View};
use crate::runtime::bindings::types::{Fragment, HostError};
use crate::runtime::{BlockHost, TagScope};

impl BlockHost for Session {
    fn user(&self) -> &User {
        &self.request.user
    }

    fn course(&self) -> &Course {
        &self.request.course
    }

    fn get_tag(&self, scope: TagScope, key: &str) -> Result<Option<String>, HostError> {
        self.tags
            .get(&self.request, self.store.as_ref(), &self.frames, scope, key)
    }

    fn set_tag(&self, scope: TagScope, key: &str, value: &str) -> Result<(), HostError> {
        self.tags.set(
            &self.request,
            self.store.as_ref(),
            self.limits(),
            &self.frames,
            scope,
            key,
            value,
        )
    }

    fn group_for(&self, partition_id: u64) -> Result<Option<Group>, HostError> {
        Session::group_for(self, partition_id)
    }

    fn render_child(
        self: Arc<Self>,
        parent: usize,
        depth: u32,
        usage_id: &str,
        view: View,
        condition: Option<(u64, Option<u64>)>,
    ) -> Result<Fragment, HostError> {
        let child = children::check_child(
            &self.request,
            &self.frames,
            self.limits(),
            parent,
            depth,
            usage_id,
            view,
        )?;
        // A block's claim that a child is a condition is not trusted: marks and exposures
        // come from the course's authored structure.
        let _ = condition;
        let mark = children::condition_mark(&self.request, child.view, child.index, |p| {
            Ok(self.decision(p)?.group())
        })
        .map_err(internal)?;
        // Randomized content: a learner sees only the children picked for them.
        let picked = self.selections.is_picked(parent, usage_id);
        if child.view == View::Student && picked == Some(false) {
            return Ok(Fragment {
                html: String::new(),
                hidden: true,
                title: None,
                icon: None,
                tooltip: None,
            });
        }
        let authored = self.request.course.condition(child.index);
        if let (View::Student, Some(c)) = (child.view, authored) {
            // A learner sees only their own group's condition, whatever the block asks.
            let mine = self.group_for(c.partition_id)?.map(|g| g.id);
            if c.group_id.is_none() || mine != c.group_id {
                return Ok(Fragment {
                    html: String::new(),
                    hidden: true,
                    title: None,
                    icon: None,
                    tooltip: None,
                });
            }
        }
        let f = self.render_block(child.index, child.depth, child.view, mark.as_ref());
        if let (View::Student, Some(c), false, false) = (child.view, authored, f.hidden, f.failed) {
            self.events
                .exposure(&self.frames, &self.request, parent, usage_id, c);
        }
        Ok(Fragment {
            // The parent gets a placeholder the host fills in (see `markup`).
            html: self.slots.hold_child(parent, Some(child.index), f.html),
            hidden: f.hidden,
            title: f.title,
            icon: f.icon,
            tooltip: f.tooltip,
        })
    }

    fn user_state(&self, block: usize) -> Result<Option<String>, HostError> {
        user_state::get(&self.request, self.store.as_ref(), &self.frames, block)
    }

    fn set_user_state(&self, block: usize, json: &str) -> Result<(), HostError> {
        user_state::set(&self.request, &self.frames, block, json)
    }

    fn publish(&self, block: usize, name: &str, json: &str) -> Result<(), HostError> {
        self.events.publish(
            &self.request,
            self.limits(),
            &self.frames,
            block,
            name,
            json,
        )
    }

    fn tallies(&self, block: usize) -> Result<Vec<(String, i64)>, HostError> {
        Ok(
            tallies::all(&self.request, self.store.as_ref(), &self.frames, block)?
                .into_iter()
                .collect(),
        )
    }

    fn add_tally(&self, block: usize, key: &str, amount: i64) -> Result<i64, HostError> {
        tallies::add(
            &self.request,
            self.store.as_ref(),
            &self.frames,
            block,
            key,
            amount,
        )
    }

    fn selected(&self, block: usize, count: u32) -> Result<Vec<String>, HostError> {
        self.selections.selected(
            &self.request,
            self.store.as_ref(),
            &self.frames,
            &self.events,
            block,
            count,
        )
    }

    fn add_client_resource(&self, block: usize, name: &str) -> Result<(), HostError> {
        let def = &self.request.block(block).def;
        let plugin = self.host.plugin(&def.block_type).map_err(internal)?;
        self.clients
            .add_resource(&plugin, block, &def.usage_id, name)
    }

    fn initialize_client(&self, block: usize, function: &str, args: &str) -> Result<(), HostError> {
        let def = &self.request.block(block).def;
        let plugin = self.host.plugin(&def.block_type).map_err(internal)?;
        self.clients
            .initialize(&plugin, block, &def.usage_id, function, args)
    }

    fn source(&self, block: usize, usage_id: &str) -> Result<(String, Option<String>), HostError> {
        sources::state_of(
            &self.request,
            self.store.as_ref(),
            &self.frames,
            block,
            usage_id,
        )
    }
}
