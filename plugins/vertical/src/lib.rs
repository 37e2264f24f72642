//! `vertical`: a unit. Renders its children in order, drops hidden ones, and is hidden
//! itself when it has children and all of them are hidden.

use serde::Deserialize;
use xbhost_sdk::containers::{all_hidden, render_visible_children};
use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};

pub struct Vertical;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: Option<String>,
    /// Icon shown for this unit in sequence navigation (for example `video`, `problem`).
    pub icon: Option<String>,
    pub tooltip: Option<String>,
}

impl Block for Vertical {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let visible = render_visible_children(cx, view)?;
        let mut html = String::from("<div class=\"vert-mod\">");
        for child in &visible {
            html.push_str("<div class=\"vert\">");
            html.push_str(&child.fragment.html);
            html.push_str("</div>");
        }
        html.push_str("</div>");
        let fields = cx.fields();
        Ok(Fragment {
            html,
            hidden: all_hidden(cx, &visible),
            title: fields.display_name.clone(),
            // A unit shows the icon authored for it, else the first its content offers
            // (a problem, a video), as Open edX's sequence navigation does.
            icon: fields
                .icon
                .clone()
                .or_else(|| visible.iter().find_map(|c| c.fragment.icon.clone())),
            tooltip: fields
                .tooltip
                .clone()
                .or_else(|| fields.display_name.clone()),
            client: Default::default(),
        })
    }
}

xbhost_sdk::export_block!(Vertical);

#[cfg(test)]
mod tests {
    use super::Vertical;
    use serde_json::json;
    use xbhost_sdk::testing::TestHost;
    use xbhost_sdk::{Fragment, View};

    #[test]
    fn renders_children_in_order_and_drops_hidden_ones() {
        let host = TestHost::new("vertical", "unit")
            .children(["a", "b", "c"])
            .child_fragment("b", Fragment::hidden());
        let f = host.render::<Vertical>(View::Student).unwrap();
        assert!(!f.hidden);
        let a = f.html.find("<p>a</p>").expect("a rendered");
        let c = f.html.find("<p>c</p>").expect("c rendered");
        assert!(a < c);
        assert!(!f.html.contains("<p>b</p>"));
        assert_eq!(host.rendered_children().len(), 3);
    }

    #[test]
    fn is_hidden_when_all_children_are() {
        let host = TestHost::new("vertical", "unit")
            .children(["a", "b"])
            .child_fragment("a", Fragment::hidden())
            .child_fragment("b", Fragment::hidden());
        assert!(host.render::<Vertical>(View::Student).unwrap().hidden);
    }

    #[test]
    fn an_empty_unit_is_not_hidden() {
        let host = TestHost::new("vertical", "unit");
        assert!(!host.render::<Vertical>(View::Student).unwrap().hidden);
    }

    #[test]
    fn takes_its_icon_from_its_content_unless_authored() {
        let problem = Fragment {
            icon: Some("problem".into()),
            ..Fragment::html("q")
        };
        let host = TestHost::new("vertical", "unit")
            .children(["a", "b"])
            .child_fragment("b", problem);
        assert_eq!(
            host.render::<Vertical>(View::Student)
                .unwrap()
                .icon
                .as_deref(),
            Some("problem")
        );
    }

    #[test]
    fn passes_title_icon_and_tooltip_through() {
        let host = TestHost::new("vertical", "unit")
            .fields(json!({"display_name": "Unit 1", "icon": "video"}))
            .children(["a"]);
        let f = host.render::<Vertical>(View::Student).unwrap();
        assert_eq!(f.title.as_deref(), Some("Unit 1"));
        assert_eq!(f.icon.as_deref(), Some("video"));
        assert_eq!(f.tooltip.as_deref(), Some("Unit 1"));
    }
}
