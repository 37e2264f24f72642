//! The sandbox side: WIT bindings, the [`HostApi`] backed by the imports, and the adapters
//! that [`crate::export_block!`] wires to the exports. Hidden from block authors.

use crate::block::Block;
use crate::context::Context;
use crate::host::HostApi;
use crate::types::{
    Condition, Fragment, Group, HostError, Severity, Source, TagScope, User, UserPartition,
    ValidationMessage, View,
};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "block-plugin",
        pub_export_macro: true,
        export_macro_name: "export_impl",
        default_bindings_module: "::xbhost_sdk::wasm::bindings",
    });
}

pub use bindings::export_impl;
pub use bindings::exports::xbhost::block::block::Guest;
pub use bindings::xbhost::block::types::{
    Fragment as WitFragment, ValidationMessage as WitValidationMessage, View as WitView,
};

use bindings::xbhost::block::{
    children, client, context, events, partitions, selection, sources, tallies, types as wit,
    user_state, user_tags,
};

/// [`HostApi`] over the component's imports.
pub struct WasmHost;

impl HostApi for WasmHost {
    fn current_user(&self) -> User {
        let u = context::current_user();
        User {
            id: u.id,
            username: u.username,
            is_staff: u.is_staff,
            is_anonymous: u.is_anonymous,
        }
    }
    fn course_key(&self) -> String {
        context::course_key()
    }
    fn usage_id(&self) -> String {
        context::usage_id()
    }
    fn block_type(&self) -> String {
        context::block_type()
    }
    fn fields_json(&self) -> String {
        context::fields()
    }
    fn children(&self) -> Vec<String> {
        context::children()
    }
    fn get_tag(&self, scope: TagScope, key: &str) -> Result<Option<String>, HostError> {
        user_tags::get(scope_to_wit(scope), key).map_err(host_error)
    }
    fn set_tag(&self, scope: TagScope, key: &str, value: &str) -> Result<(), HostError> {
        user_tags::set(scope_to_wit(scope), key, value).map_err(host_error)
    }
    fn partitions(&self) -> Vec<UserPartition> {
        partitions::all()
            .into_iter()
            .map(|p| UserPartition {
                id: p.id,
                name: p.name,
                description: p.description,
                scheme: p.scheme,
                active: p.active,
                groups: p.groups.into_iter().map(group).collect(),
            })
            .collect()
    }
    fn group_for(&self, partition_id: u64) -> Result<Option<Group>, HostError> {
        partitions::group_for(partition_id)
            .map(|g| g.map(group))
            .map_err(host_error)
    }
    fn render_child(
        &self,
        usage_id: &str,
        view: View,
        condition: Option<Condition>,
    ) -> Result<Fragment, HostError> {
        let condition = condition.map(|c| wit::Condition {
            partition_id: c.partition_id,
            group_id: c.group_id,
        });
        children::render_child(usage_id, view_to_wit(view), condition)
            .map(|f| Fragment {
                html: f.html,
                hidden: f.hidden,
                title: f.title,
                icon: f.icon,
                tooltip: f.tooltip,
                client: Default::default(),
            })
            .map_err(host_error)
    }
    fn get_state(&self) -> Result<Option<String>, HostError> {
        user_state::get().map_err(host_error)
    }
    fn set_state(&self, json: &str) -> Result<(), HostError> {
        user_state::set(json).map_err(host_error)
    }
    fn publish(&self, name: &str, json: &str) -> Result<(), HostError> {
        events::publish(name, json).map_err(host_error)
    }

    fn tallies(&self) -> Result<Vec<(String, i64)>, HostError> {
        tallies::all().map_err(host_error)
    }

    fn add_tally(&self, key: &str, amount: i64) -> Result<i64, HostError> {
        tallies::add(key, amount).map_err(host_error)
    }

    fn selected_children(&self, count: u32) -> Result<Vec<String>, HostError> {
        selection::selected(count).map_err(host_error)
    }

    fn source(&self, usage_id: &str) -> Result<Source, HostError> {
        sources::state_of(usage_id)
            .map(|s| Source {
                block_type: s.block_type,
                state: s.state,
            })
            .map_err(host_error)
    }
}

fn group(g: wit::Group) -> Group {
    Group {
        id: g.id,
        name: g.name,
    }
}

fn host_error(e: wit::HostError) -> HostError {
    match e {
        wit::HostError::InvalidInput(m) => HostError::InvalidInput(m),
        wit::HostError::NotFound(m) => HostError::NotFound(m),
        wit::HostError::LimitExceeded(m) => HostError::LimitExceeded(m),
        wit::HostError::Internal(m) => HostError::Internal(m),
    }
}

fn scope_to_wit(scope: TagScope) -> user_tags::Scope {
    match scope {
        TagScope::Course => user_tags::Scope::Course,
        TagScope::User => user_tags::Scope::User,
    }
}

fn view_to_wit(view: View) -> WitView {
    match view {
        View::Student => WitView::Student,
        View::Staff => WitView::Staff,
        View::Author => WitView::Author,
    }
}

fn view_from_wit(view: WitView) -> View {
    match view {
        WitView::Student => View::Student,
        WitView::Staff => View::Staff,
        WitView::Author => View::Author,
    }
}

pub fn render<B: Block>(view: WitView) -> Result<WitFragment, String> {
    let cx = Context::<B::Fields>::new(&WasmHost).map_err(|e| e.0)?;
    let f = B::render(&cx, view_from_wit(view)).map_err(|e| e.0)?;
    // Client-side code goes to the host through `client` (0.1.2): the fragment record
    // stays as 0.1.0 had it.
    for name in &f.client.resources {
        client::add_resource(name)
            .map_err(|e| format!("client file {name:?}: {}", host_error(e)))?;
    }
    if let Some((function, args)) = &f.client.initialize {
        client::initialize(function, args)
            .map_err(|e| format!("client initialize {function:?}: {}", host_error(e)))?;
    }
    Ok(WitFragment {
        html: f.html,
        hidden: f.hidden,
        title: f.title,
        icon: f.icon,
        tooltip: f.tooltip,
    })
}

pub fn visible_children<B: Block>() -> Result<Vec<String>, String> {
    let cx = Context::<B::Fields>::new(&WasmHost).map_err(|e| e.0)?;
    B::visible_children(&cx).map_err(|e| e.0)
}

pub fn validate<B: Block>() -> Vec<WitValidationMessage> {
    let messages = match Context::<B::Fields>::new(&WasmHost) {
        Ok(cx) => B::validate(&cx),
        Err(e) => vec![ValidationMessage::error(e.0)],
    };
    messages
        .into_iter()
        .map(|m| WitValidationMessage {
            severity: match m.severity {
                Severity::Info => wit::Severity::Info,
                Severity::Warning => wit::Severity::Warning,
                Severity::Error => wit::Severity::Error,
            },
            text: m.text,
        })
        .collect()
}

pub fn handle<B: Block>(name: String, payload: String) -> Result<String, String> {
    let cx = Context::<B::Fields>::new(&WasmHost).map_err(|e| e.0)?;
    let payload: serde_json::Value = serde_json::from_str(&payload)
        .map_err(|e| format!("payload of handler {name:?} is not JSON: {e}"))?;
    let answer = B::handle(&cx, &name, payload).map_err(|e| e.0)?;
    serde_json::to_string(&answer).map_err(|e| e.to_string())
}
