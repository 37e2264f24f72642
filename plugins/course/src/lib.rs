//! `course`: renders its heading and its visible children; hidden when all its children are.

use xbhost_sdk::containers::{OutlineFields, render_outline};
use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};

pub struct Course;

impl Block for Course {
    type Fields = OutlineFields;

    fn render(cx: &Context<'_, OutlineFields>, view: View) -> BlockResult<Fragment> {
        render_outline(cx, view, "course", 2)
    }
}

xbhost_sdk::export_block!(Course);

#[cfg(test)]
mod tests {
    use super::Course;
    use serde_json::json;
    use xbhost_sdk::testing::TestHost;
    use xbhost_sdk::{Fragment, View};

    #[test]
    fn renders_visible_children_under_its_heading_and_hides_when_all_are_hidden() {
        let host = TestHost::new("course", "x")
            .fields(json!({"display_name": "Week <1>"}))
            .children(["a", "b"])
            .child_fragment("a", Fragment::hidden());
        let f = host.render::<Course>(View::Student).unwrap();
        assert!(f.html.contains("<h2>Week &lt;1&gt;</h2>"), "{}", f.html);
        assert!(f.html.contains("<p>b</p>") && !f.html.contains("<p>a</p>"));
        assert!(!f.hidden);
        let all_hidden = TestHost::new("course", "x")
            .children(["a"])
            .child_fragment("a", Fragment::hidden());
        assert!(all_hidden.render::<Course>(View::Student).unwrap().hidden);
    }
}
