//! `html`: renders its authored HTML (the Open edX `data` field) as is.
//!
//! Course HTML is authored content and is trusted like the rest of the course; the host
//! escapes everything it generates itself.

use serde::Deserialize;
use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};

pub struct Html;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Fields {
    /// The HTML body.
    pub data: String,
    pub display_name: Option<String>,
}

impl Block for Html {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, _view: View) -> BlockResult<Fragment> {
        let fields = cx.fields();
        let mut fragment = Fragment::html(fields.data.clone());
        fragment.title = fields.display_name.clone();
        Ok(fragment)
    }
}

xbhost_sdk::export_block!(Html);

#[cfg(test)]
mod tests {
    use super::Html;
    use serde_json::json;
    use xbhost_sdk::View;
    use xbhost_sdk::testing::TestHost;

    #[test]
    fn renders_its_data_field_and_title() {
        let host = TestHost::new("html", "intro")
            .fields(json!({"data": "<p>Hello <em>world</em></p>", "display_name": "Intro"}));
        let f = host.render::<Html>(View::Student).unwrap();
        assert_eq!(f.html, "<p>Hello <em>world</em></p>");
        assert_eq!(f.title.as_deref(), Some("Intro"));
        assert!(!f.hidden);
    }

    #[test]
    fn wrongly_typed_fields_are_an_error_naming_the_block() {
        let host = TestHost::new("html", "intro").fields(json!({"data": 5}));
        let err = host.render::<Html>(View::Student).unwrap_err();
        assert!(err.0.contains("\"intro\""), "{err}");
    }
}
