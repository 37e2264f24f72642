use serde_json::json;
use xbhost_sdk::View;
use xbhost_sdk::testing::TestHost;

use super::Lti;
use lti_launch::NO_LAUNCH_URL;
use lti_launch::oauth::{base_string, hmac_sha1};

/// The demo course's Codeboard block, with its passport.
fn codeboard() -> serde_json::Value {
    json!({
        "display_name": "Codeboard.io LTI Demonstration",
        "lti_id": "codeboard",
        "launch_url": "https://codeboard.io/lti/projects/414233",
        "open_in_a_new_page": false,
        "has_score": true,
        "lti_passport": {"key": "codeboard_key_1", "secret": "codeboard_secret_1234"},
    })
}

/// The form's hidden fields, in page order, from the block's HTML.
fn form_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once("\" value=\"").unwrap();
            let value = rest.split_once("\">").unwrap().0;
            let unescape = |s: &str| {
                s.replace("&quot;", "\"")
                    .replace("&#39;", "'")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&")
            };
            (unescape(name), unescape(value))
        })
        .collect()
}

#[test]
fn with_defaults_learners_see_what_open_edx_shows_and_staff_what_is_missing() {
    let host = TestHost::new("lti", "l1");
    let f = host.render::<Lti>(View::Student).unwrap();
    assert!(f.html.contains("LTI (External resource)"), "{}", f.html);
    assert!(
        f.html.contains(&NO_LAUNCH_URL.replace('"', "&quot;")),
        "{}",
        f.html
    );
    assert!(!f.html.contains("<form"), "the placeholder URL is no URL");
    assert!(!f.html.contains("lti-staff-notes"));
    let staff = host.render::<Lti>(View::Staff).unwrap();
    assert!(staff.html.contains("No launch URL"), "{}", staff.html);
    assert!(
        staff.html.contains("the block has no lti_id"),
        "{}",
        staff.html
    );
}

#[test]
fn renders_a_signed_launch_form_in_a_frame_with_its_fields() {
    let host = TestHost::new("lti", "l1")
        .fields(codeboard())
        .username("ada");
    let f = host.render::<Lti>(View::Student).unwrap();
    assert!(
        f.html
            .contains("Codeboard.io LTI Demonstration (External resource)")
    );
    assert!(f.html.contains("(1 points possible)"));
    assert!(f.html.contains("action=\"https://codeboard.io/lti/projects/414233\" method=\"post\" target=\"ltiFrame-l1\""), "{}", f.html);
    assert!(
        f.html
            .contains("<iframe class=\"ltiLaunchFrame\" name=\"ltiFrame-l1\"")
    );
    assert!(
        !f.html.contains("codeboard_secret_1234"),
        "the secret never reaches the page"
    );
    let fields = form_fields(&f.html);
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(get("oauth_consumer_key"), Some("codeboard_key_1"));
    assert_eq!(get("roles"), Some("Student"));
    assert_eq!(get("lti_message_type"), Some("basic-lti-launch-request"));
    let signed: Vec<_> = fields
        .iter()
        .filter(|(k, _)| k != "oauth_signature")
        .cloned()
        .collect();
    let base = base_string("POST", "https://codeboard.io/lti/projects/414233", &signed);
    assert_eq!(
        get("oauth_signature"),
        Some(hmac_sha1(&base, "codeboard_secret_1234", "").as_str())
    );
    // Staff: the key and what the launch cannot do here.
    let staff = host.render::<Lti>(View::Staff).unwrap();
    assert!(staff.html.contains("codeboard_key_1"));
    assert!(staff.html.contains("form-action"));
    assert!(staff.html.contains("no LTI outcome service"));
}

#[test]
fn a_new_window_launch_and_custom_parameters() {
    let mut fields = codeboard();
    fields["open_in_a_new_page"] = json!(true);
    fields["button_text"] = json!("Open the <editor>");
    fields["custom_parameters"] = json!(["next=https://x/?a=1&b=2"]);
    let host = TestHost::new("lti", "l1").fields(fields);
    let f = host.render::<Lti>(View::Student).unwrap();
    assert!(f.html.contains("target=\"_blank\""));
    assert!(!f.html.contains("<iframe"));
    assert!(f.html.contains(">Open the &lt;editor&gt;</button>"));
    let fields = form_fields(&f.html);
    assert!(
        fields.contains(&("custom_next".into(), "https://x/?a=1&b=2".into())),
        "{fields:?}"
    );
}

#[test]
fn no_passport_is_signed_empty_and_staff_are_told_which_entry_is_missing() {
    let mut fields = codeboard();
    fields.as_object_mut().unwrap().remove("lti_passport");
    let host = TestHost::new("lti", "l1").fields(fields);
    let learner = host.render::<Lti>(View::Student).unwrap();
    assert!(form_fields(&learner.html).contains(&("oauth_consumer_key".into(), String::new())));
    let staff = host.render::<Lti>(View::Staff).unwrap();
    assert!(
        staff.html.contains("has no entry \"codeboard:key:secret\""),
        "{}",
        staff.html
    );
    assert_eq!(host.validate::<Lti>().len(), 1);
}

#[test]
fn the_launch_handler_answers_the_signed_launch_and_refuses_payloads() {
    let host = TestHost::new("lti", "l1").fields(codeboard());
    let answer = host.handle::<Lti>("launch", json!({})).unwrap();
    assert_eq!(answer["origin"], "https://codeboard.io");
    assert_eq!(answer["fields"]["oauth_consumer_key"], "codeboard_key_1");
    assert_eq!(answer["fields"]["oauth_signature_method"], "HMAC-SHA1");
    host.handle::<Lti>("launch", json!({"answer": []})).unwrap();
    for bad in [
        json!({"x": 1}),
        json!([]),
        json!("go"),
        json!({"answer": [1]}),
    ] {
        let err = host.handle::<Lti>("launch", bad.clone()).unwrap_err();
        assert!(err.0.contains("launch takes no parameters"), "{bad}: {err}");
    }
    assert!(host.handle::<Lti>("grade_handler", json!({})).is_err());
    let none = TestHost::new("lti", "l2");
    assert!(
        none.handle::<Lti>("launch", json!({}))
            .unwrap_err()
            .0
            .contains("launch_url")
    );
    assert_eq!(host.stored_state(), None);
    assert!(host.events().is_empty());
}

#[test]
fn bad_settings_are_errors_naming_the_block() {
    let mut fields = codeboard();
    fields["custom_parameters"] = json!(["no equals sign"]);
    let host = TestHost::new("lti", "l1").fields(fields);
    let err = host.render::<Lti>(View::Student).unwrap_err();
    assert!(
        err.0.contains("lti block \"l1\"") && err.0.contains("Could not parse custom parameter"),
        "{err}"
    );
    let mut fields = codeboard();
    fields["launch_url"] = json!("javascript:alert(1)");
    let host = TestHost::new("lti", "l1").fields(fields);
    let err = host.render::<Lti>(View::Student).unwrap_err();
    assert!(err.0.contains("launch_url"), "{err}");
    let host = TestHost::new("lti", "l1").fields(json!({"has_score": "yes"}));
    assert!(
        host.render::<Lti>(View::Student)
            .unwrap_err()
            .0
            .contains("\"l1\"")
    );
}
