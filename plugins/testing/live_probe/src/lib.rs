//! Test plugin for the live loop (`xbhost serve --watch`, tests/live_loop.rs): renders
//! its build's marker ([`MARK`]) and prints it, with text that looks like markup, to
//! stdout and stderr, so the workbench's guest output (shown to staff, escaped) can be
//! checked. The test makes a second build of the same plugin by replacing the marker's
//! bytes in the component (a string constant is stored verbatim in a data segment): a
//! different component, same name and fields, other output, as a rebuild would be.

use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};

/// The marker of this build: the test replaces these bytes (same length) for its second
/// build.
pub const MARK: &str = "live-probe-build:first";

pub struct LiveProbe;

impl Block for LiveProbe {
    type Fields = serde_json::Value;

    fn render(cx: &Context<'_, Self::Fields>, _view: View) -> BlockResult<Fragment> {
        let user = cx.user().id;
        println!("rendering for {user}: {MARK} <b id=\"printed-markup\">not markup</b>");
        eprintln!("stderr of {MARK}");
        Ok(Fragment::html(format!(
            "<p class=\"live-probe\" data-mark=\"{MARK}\">{MARK}</p>"
        )))
    }
}

xbhost_sdk::export_block!(LiveProbe);
