//! `unsupported`: stands in for a block of a type xbhost has no plugin for (an imported
//! `poll`, `video`, `lti`, ...). Learners never see it; staff and authors see what it is.

use serde::Deserialize;
use xbhost_sdk::html::escape;
use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};

pub struct Unsupported;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Fields {
    /// The block type in the source course.
    pub original_type: String,
    pub display_name: Option<String>,
    /// Why it was not imported as a supported block, when there is more to say.
    pub reason: Option<String>,
}

impl Block for Unsupported {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        if view == View::Student {
            return Ok(Fragment::hidden());
        }
        let f = cx.fields();
        let mut html = format!(
            "<div class=\"unsupported-block\">Unsupported block <code>{}</code>",
            escape(&f.original_type)
        );
        if let Some(name) = &f.display_name {
            html.push_str(&format!(" \u{201c}{}\u{201d}", escape(name)));
        }
        html.push_str(": learners do not see it.");
        if let Some(reason) = &f.reason {
            html.push_str(&format!(" ({})", escape(reason)));
        }
        html.push_str("</div>");
        Ok(Fragment::html(html))
    }

    fn visible_children(_cx: &Context<'_, Fields>) -> BlockResult<Vec<String>> {
        Ok(Vec::new())
    }
}

xbhost_sdk::export_block!(Unsupported);

#[cfg(test)]
mod tests {
    use super::Unsupported;
    use serde_json::json;
    use xbhost_sdk::View;
    use xbhost_sdk::testing::TestHost;

    #[test]
    fn hidden_from_learners_and_named_for_staff() {
        let host = TestHost::new("unsupported", "poll_1")
            .fields(json!({"original_type": "poll", "display_name": "Your <opinion>"}));
        assert!(host.render::<Unsupported>(View::Student).unwrap().hidden);
        let staff = host.render::<Unsupported>(View::Staff).unwrap();
        assert!(staff.html.contains("<code>poll</code>"));
        assert!(staff.html.contains("Your &lt;opinion&gt;"));
        assert!(!staff.hidden);
    }
}
