//! `google_calendar`: the Google Calendar XBlock of openedx/xblock-google-drive (OLX tag
//! `google-calendar`; the importer gives these blocks this type, since a plugin is named
//! after its crate and cargo's crate names cannot hold `-`).
//!
//! - fields as the XBlock has them: `display_name` ("Google Calendar"), `calendar_id` (the
//!   XBlock's public demo calendar) and `default_view` (0 week, 1 month, 2 agenda;
//!   default 1).
//! - render: the calendar's embed page in an iframe titled with the display name, as the
//!   XBlock's template does, on `calendar.google.com` (the host's Content-Security-Policy
//!   allows frames from there). Staff also see the embed URL.
//! - events: the XBlock's script publishes `edx.googlecomponent.calendar.displayed`
//!   (`{url, displayed_in: "iframe"}`) once the frame loads; blocks run no script here, so
//!   the block publishes it when it renders the frame for a learner.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::json;
use xbhost_sdk::html::escape;
use xbhost_sdk::{Block, BlockError, BlockResult, Context, Fragment, ValidationMessage, View};

pub struct GoogleCalendar;

/// The XBlock's default: edX's public calendar.
pub const DEFAULT_CALENDAR_ID: &str =
    "edx.org_lom804qe3ttspplj1bgeu1l3ak@group.calendar.google.com";

/// Google's calendar embed page.
pub const EMBED_URL: &str = "https://calendar.google.com/calendar/embed";

/// The XBlock's views, by `default_view`: what its template passes as `mode`.
pub const VIEWS: [&str; 3] = ["Week", "Month", "Agenda"];

/// The event the XBlock sends when the calendar is shown.
pub const DISPLAYED_EVENT: &str = "edx.googlecomponent.calendar.displayed";

/// Longest calendar id accepted (Google's ids are well under 200 characters).
pub const MAX_CALENDAR_ID_BYTES: usize = 1024;

/// A query value: everything but the unreserved characters is escaped.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: String,
    pub calendar_id: String,
    pub default_view: i64,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            display_name: "Google Calendar".into(),
            calendar_id: DEFAULT_CALENDAR_ID.into(),
            default_view: 1,
        }
    }
}

impl Fields {
    /// The embed URL of the calendar in its default view, or what is wrong with the fields.
    pub fn embed_url(&self) -> Result<String, String> {
        let id = self.calendar_id.trim();
        if id.is_empty() {
            return Err("calendar_id is empty: set it to the calendar's public id".into());
        }
        if id.len() > MAX_CALENDAR_ID_BYTES {
            return Err(format!(
                "calendar_id is {} bytes, over the limit of {MAX_CALENDAR_ID_BYTES}",
                id.len()
            ));
        }
        let mode = usize::try_from(self.default_view)
            .ok()
            .and_then(|i| VIEWS.get(i))
            .ok_or_else(|| {
                format!(
                    "default_view is {}: it must be 0 (week), 1 (month) or 2 (agenda)",
                    self.default_view
                )
            })?;
        Ok(format!(
            "{EMBED_URL}?mode={mode}&src={}&showCalendars=0&hl=en-us",
            utf8_percent_encode(id, QUERY_VALUE)
        ))
    }
}

impl Block for GoogleCalendar {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let f = cx.fields();
        let url = f
            .embed_url()
            .map_err(|e| BlockError::new(format!("google calendar {:?}: {e}", cx.usage_id())))?;
        let mut html = format!(
            "<div class=\"google-calendar-xblock-wrapper\">\
             <iframe src=\"{src}\" title=\"{title}\" width=\"800\" height=\"600\" \
             frameborder=\"0\" scrolling=\"no\"></iframe></div>",
            src = escape(&url),
            title = escape(&f.display_name),
        );
        if view == View::Student {
            cx.publish(
                DISPLAYED_EVENT,
                &json!({ "url": url, "displayed_in": "iframe" }),
            )?;
        } else {
            html.push_str(&format!(
                "<p class=\"google-calendar-staff-note\">Embedded from <code>{}</code>.</p>",
                escape(&url)
            ));
        }
        Ok(Fragment {
            html,
            title: Some(f.display_name.clone()),
            icon: Some("other".into()),
            ..Fragment::default()
        })
    }

    fn validate(cx: &Context<'_, Fields>) -> Vec<ValidationMessage> {
        match cx.fields().embed_url() {
            Ok(_) => vec![],
            Err(e) => vec![ValidationMessage::error(e)],
        }
    }
}

xbhost_sdk::export_block!(GoogleCalendar);

#[cfg(test)]
mod tests {
    use super::{DISPLAYED_EVENT, GoogleCalendar};
    use serde_json::json;
    use xbhost_sdk::View;
    use xbhost_sdk::testing::TestHost;

    const DEFAULT_SRC: &str = "https://calendar.google.com/calendar/embed?mode=Month&amp;\
        src=edx.org_lom804qe3ttspplj1bgeu1l3ak%40group.calendar.google.com&amp;showCalendars=0&amp;hl=en-us";

    #[test]
    fn renders_the_xblocks_default_calendar_in_month_view() {
        let host = TestHost::new("google_calendar", "cal");
        let f = host.render::<GoogleCalendar>(View::Student).unwrap();
        assert_eq!(f.title.as_deref(), Some("Google Calendar"));
        assert!(
            f.html.contains(&format!("src=\"{DEFAULT_SRC}\"")),
            "{}",
            f.html
        );
        assert!(f.html.contains("title=\"Google Calendar\""));
        assert!(
            !f.html.contains("staff-note"),
            "learners see the calendar only"
        );
        let events = host.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, DISPLAYED_EVENT);
        assert_eq!(events[0].1["displayed_in"], "iframe");
        assert!(events[0].1["url"].as_str().unwrap().contains("mode=Month"));
    }

    #[test]
    fn renders_its_fields_escaped() {
        let host = TestHost::new("google_calendar", "cal").fields(json!({
            "display_name": "Office \"hours\" <b>",
            "calendar_id": "a&b@group.calendar.google.com",
            "default_view": 2,
        }));
        let f = host.render::<GoogleCalendar>(View::Staff).unwrap();
        assert!(
            f.html.contains("mode=Agenda&amp;src=a%26b%40group"),
            "{}",
            f.html
        );
        assert!(
            f.html
                .contains("title=\"Office &quot;hours&quot; &lt;b&gt;\"")
        );
        assert!(f.html.contains("staff-note"), "staff see the embed URL");
        assert!(host.events().is_empty(), "no learner saw it");
    }

    #[test]
    fn bad_fields_are_errors_naming_the_block_and_field() {
        for (fields, what) in [
            (json!({"default_view": 3}), "default_view is 3"),
            (json!({"default_view": -1}), "default_view is -1"),
            (json!({"calendar_id": "  "}), "calendar_id is empty"),
            (json!({"calendar_id": "x".repeat(2000)}), "over the limit"),
        ] {
            let host = TestHost::new("google_calendar", "cal").fields(fields);
            let err = host.render::<GoogleCalendar>(View::Student).unwrap_err();
            assert!(err.0.contains("\"cal\"") && err.0.contains(what), "{err}");
            assert_eq!(host.validate::<GoogleCalendar>().len(), 1);
            assert!(host.events().is_empty());
        }
    }
}
