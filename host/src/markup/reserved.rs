//! What the host reserves in the page: the attributes and classes of its wrappers and
//! marks, and the placeholder element of a child's HTML. Block HTML may carry none of them
//! (`contain` removes them); the wrapper code writes exactly these.

/// The attributes the host writes on a block's wrapper.
pub const USAGE_ID: &str = "data-usage-id";
pub const BLOCK_TYPE: &str = "data-block-type";
/// Content-group restrictions (staff view).
pub const GROUP_ACCESS: &str = "data-group-access";
/// Condition marks (an experiment's children in staff and author views).
pub const PARTITION_ID: &str = "data-partition-id";
pub const GROUP_ID: &str = "data-group-id";
pub const GROUP_NAME: &str = "data-group-name";
pub const INACTIVE: &str = "data-inactive";
pub const OWN_GROUP: &str = "data-own-group";
/// A failed block's placeholder.
pub const ERROR: &str = "data-error";
/// Randomized content: whether the child was picked for the viewer (staff and author views;
/// in the host's own prefix, so authors' `data-selected` is left alone).
pub const SELECTED: &str = "data-xbhost-selected";
/// Client-side code (contract 0.1.2): the wrapper of a block that has some carries what
/// its frame loads (JSON), and its HTML goes in a `<template>` with [`CLIENT_HTML`], which
/// the page script moves into the block's sandboxed frame.
pub const CLIENT: &str = "data-xbhost-client";
pub const CLIENT_HTML: &str = "data-xbhost-client-html";

/// Every attribute only the host may write, removed from blocks' HTML: the wrapper's, and
/// those its pages write around blocks, which the page script and CSS read
/// (`server/page.rs`, `server/workbench.rs`). Also every attribute that starts with
/// [`RESERVED_ATTRIBUTE_PREFIX`].
pub const RESERVED_ATTRIBUTES: &[&str] = &[
    USAGE_ID,
    BLOCK_TYPE,
    GROUP_ACCESS,
    PARTITION_ID,
    GROUP_ID,
    GROUP_NAME,
    INACTIVE,
    OWN_GROUP,
    ERROR,
    "data-view",
    "data-user",
    "data-course-key",
    "data-read-only",
    "data-submit-on-change",
    "data-earned",
    "data-possible",
];
pub const RESERVED_ATTRIBUTE_PREFIX: &str = "data-xbhost-";

/// The wrapper's class (with `xblock-VIEW`); `xblock` and every class starting with
/// `xblock-` or [`HOST_CLASS_PREFIX`] are the host's.
pub const WRAPPER_CLASS: &str = "xblock";
pub const HOST_CLASS_PREFIX: &str = "xbhost-";
pub const CONDITION_LABEL: &str = "xbhost-condition-label";
pub const RESTRICTION_LABEL: &str = "xbhost-restriction-label";
pub const SELECTION_LABEL: &str = "xbhost-selection-label";

/// The placeholder a container gets for a child's HTML, and its token attribute.
pub const PLACEHOLDER_ELEMENT: &str = "xbhost-child";
pub const PLACEHOLDER_TOKEN: &str = "data-xbhost-slot";

/// Whether only the host may write this attribute (any case).
pub fn reserved_attribute(name: &str) -> bool {
    RESERVED_ATTRIBUTES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
        || starts_with_ignore_case(name, RESERVED_ATTRIBUTE_PREFIX)
}

/// Whether only the host may use this class (any case: quirks mode ignores it).
pub fn reserved_class(class: &str) -> bool {
    class.eq_ignore_ascii_case(WRAPPER_CLASS)
        || starts_with_ignore_case(class, "xblock-")
        || starts_with_ignore_case(class, HOST_CLASS_PREFIX)
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}
