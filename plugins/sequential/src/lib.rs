//! `sequential`: a sequence of units with navigation. Units that are hidden for the
//! learner are omitted, from the navigation as well; each unit's title, icon and tooltip
//! pass through to its navigation entry.

use serde::Deserialize;
use xbhost_sdk::containers::{all_hidden, render_visible_children};
use xbhost_sdk::html::escape;
use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};

pub struct Sequential;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: Option<String>,
}

impl Block for Sequential {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let units = render_visible_children(cx, view)?;
        let mut nav = String::from("<nav class=\"sequence-nav\"><ol>");
        let mut body = String::new();
        for (i, unit) in units.iter().enumerate() {
            let f = &unit.fragment;
            let title = f.title.clone().unwrap_or_else(|| format!("Unit {}", i + 1));
            nav.push_str(&format!(
                "<li class=\"seq-item\" data-unit=\"{id}\" data-icon=\"{icon}\" title=\"{tip}\"><a href=\"#seq-{id}\">{title}</a></li>",
                id = escape(&unit.usage_id),
                icon = escape(f.icon.as_deref().unwrap_or("other")),
                tip = escape(f.tooltip.as_deref().unwrap_or(&title)),
                title = escape(&title),
            ));
            body.push_str(&format!(
                "<section class=\"seq-unit\" id=\"seq-{}\">{}</section>",
                escape(&unit.usage_id),
                f.html
            ));
        }
        nav.push_str("</ol></nav>");
        let name = cx.fields().display_name.clone();
        let heading = name
            .as_deref()
            .map(|n| format!("<h4>{}</h4>", escape(n)))
            .unwrap_or_default();
        Ok(Fragment {
            html: format!("<div class=\"sequence\">{heading}{nav}{body}</div>"),
            hidden: all_hidden(cx, &units),
            title: name,
            ..Fragment::default()
        })
    }
}

xbhost_sdk::export_block!(Sequential);

#[cfg(test)]
mod tests {
    use super::Sequential;
    use xbhost_sdk::testing::TestHost;
    use xbhost_sdk::{Fragment, View};

    #[test]
    fn navigation_omits_hidden_units_and_passes_titles_icons_and_tooltips_through() {
        let unit = |title: &str, icon: &str, tip: &str| Fragment {
            title: Some(title.into()),
            icon: Some(icon.into()),
            tooltip: Some(tip.into()),
            ..Fragment::html(format!("<p>{title}</p>"))
        };
        let host = TestHost::new("sequential", "seq")
            .children(["u1", "u2", "u3"])
            .child_fragment("u1", unit("Intro", "video", "Watch first"))
            .child_fragment("u2", Fragment::hidden())
            .child_fragment("u3", unit("Quiz & more", "problem", "Graded"));
        let f = host.render::<Sequential>(View::Student).unwrap();
        assert!(f.html.contains("data-unit=\"u1\" data-icon=\"video\" title=\"Watch first\"><a href=\"#seq-u1\">Intro</a>"), "{}", f.html);
        assert!(f.html.contains(
            "data-icon=\"problem\" title=\"Graded\"><a href=\"#seq-u3\">Quiz &amp; more</a>"
        ));
        assert!(
            !f.html.contains("u2"),
            "hidden unit in the sequence: {}",
            f.html
        );
        assert!(!f.hidden);
        let none = TestHost::new("sequential", "seq")
            .children(["u2"])
            .child_fragment("u2", Fragment::hidden());
        assert!(none.render::<Sequential>(View::Student).unwrap().hidden);
    }
}
