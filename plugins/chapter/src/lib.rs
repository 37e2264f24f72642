//! `chapter`: renders its heading and its visible children; hidden when all its children are.

use xbhost_sdk::containers::{OutlineFields, render_outline};
use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};

pub struct Chapter;

impl Block for Chapter {
    type Fields = OutlineFields;

    fn render(cx: &Context<'_, OutlineFields>, view: View) -> BlockResult<Fragment> {
        render_outline(cx, view, "chapter", 3)
    }
}

xbhost_sdk::export_block!(Chapter);

#[cfg(test)]
mod tests {
    use super::Chapter;
    use serde_json::json;
    use xbhost_sdk::testing::TestHost;
    use xbhost_sdk::{Fragment, View};

    #[test]
    fn renders_visible_children_under_its_heading_and_hides_when_all_are_hidden() {
        let host = TestHost::new("chapter", "x")
            .fields(json!({"display_name": "Week <1>"}))
            .children(["a", "b"])
            .child_fragment("a", Fragment::hidden());
        let f = host.render::<Chapter>(View::Student).unwrap();
        assert!(f.html.contains("<h3>Week &lt;1&gt;</h3>"), "{}", f.html);
        assert!(f.html.contains("<p>b</p>") && !f.html.contains("<p>a</p>"));
        assert!(!f.hidden);
        let all_hidden = TestHost::new("chapter", "x")
            .children(["a"])
            .child_fragment("a", Fragment::hidden());
        assert!(all_hidden.render::<Chapter>(View::Student).unwrap().hidden);
    }
}
