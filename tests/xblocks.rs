//! The XBlocks of the real exports besides problems, video and randomized content (`done`,
//! `google-calendar`, `google-document`, `rate`, `annotatable`, `lti`, `lti_consumer`):
//! both Open edX exports imported with the real built plugins, each of these blocks
//! rendered for a learner through the real host, their handlers storing state and
//! publishing events, and a small export with an LTI passport whose launch form carries a
//! signature this test checks with its own OAuth 1.0 code.

use hmac::{Hmac, Mac};
use scraper::{Html, Selector};
use serde_json::{Value, json};
use sha1::Sha1;
use xbhost::olx::{ImportOptions, ImportReport};
use xbhost::{User, View};
use xbhost_tests::exports::{SMALL_COURSE, small_course, write_dir};
use xbhost_tests::olx::{TEST_COURSE, olx};
use xbhost_tests::{Fixture, PRODUCT_PLUGINS};

const DEMO_COURSE: &str = "course-v1:OpenedX+DemoX+DemoCourse";

/// The tags of these blocks, and the plugin (block type) each becomes.
const TYPES: &[(&str, &str)] = &[
    ("done", "done"),
    ("google-calendar", "google_calendar"),
    ("google-document", "google_document"),
    ("rate", "rate"),
    ("annotatable", "annotatable"),
    ("lti", "lti"),
    ("lti_consumer", "lti_consumer"),
];

/// (usage id, block type, text the learner's page must show) in the test course.
const TEST_COURSE_BLOCKS: &[(&str, &str, &str)] = &[
    (
        "fba1965990764842bd555eb5c82b371d",
        "done",
        ">Mark as complete</button>",
    ),
    (
        "c1e0b2bd5e3243708f8bdc0e83898c1b",
        "google_calendar",
        "https://calendar.google.com/calendar/embed?mode=Month",
    ),
    (
        "ea17de0def974632ba230929149ec669",
        "google_document",
        "<iframe src=\"https://docs.google.com/presentation/d/",
    ),
    (
        "a286d13cb60c423db55d2664e3b34d2e",
        "rate",
        "Was this section clear or confusing?",
    ),
    (
        "5f3526e63fab40088f652ec038879c54",
        "annotatable",
        "class=\"annotatable-span highlight highlight-yellow\"",
    ),
    (
        "68db40c5640942b88d90b4261410f7b0",
        "lti",
        "Please provide launch_url.",
    ),
    (
        "f141bdafb00640249348ef3774fd8982",
        "lti_consumer",
        "Please provide launch_url.",
    ),
];

/// The same in the demo course.
const DEMO_COURSE_BLOCKS: &[(&str, &str, &str)] = &[
    (
        "af02a17e4cc642eba37953c4febf5746",
        "done",
        ">Mark as complete</button>",
    ),
    (
        "b1067ae88289450f9887c38b28d8868b",
        "annotatable",
        "title=\"A Zealous Pilgrimage: The 'zealous pilgrimage'",
    ),
    (
        "94231b63c6c34ead863d2876a4762751",
        "lti",
        "action=\"https://codeboard.io/lti/projects/414233\"",
    ),
    (
        "8e71d278e94f4913bc564cc6141fde53",
        "lti",
        "action=\"https://openjupyter-demox.xopic.de/hub/lti/launch\"",
    ),
];

fn import(f: &Fixture, name: &str) -> ImportReport {
    f.host
        .import_course(&olx(name), &ImportOptions::default())
        .unwrap_or_else(|e| panic!("importing {name}: {e:#}"))
        .0
}

fn learner_page(f: &Fixture, course: &str, usage: &str, user: &str) -> String {
    let out = f.render(course, usage, User::learner(user), View::Student);
    assert!(out.failures.is_empty(), "{usage}: {:?}", out.failures);
    assert!(!out.hidden, "{usage} is hidden");
    out.html
}

/// The launch form's fields as the page carries them.
fn form_fields(html: &str) -> (String, Vec<(String, String)>) {
    let page = Html::parse_fragment(html);
    let form = page
        .select(&Selector::parse("form.ltiLaunchForm").unwrap())
        .next()
        .unwrap_or_else(|| panic!("no launch form in {html}"));
    let action = form.value().attr("action").unwrap().to_string();
    assert_eq!(form.value().attr("method"), Some("post"));
    let fields = form
        .select(&Selector::parse("input[type=hidden]").unwrap())
        .map(|i| {
            let name = i.value().attr("name").unwrap().to_string();
            (
                name,
                i.value().attr("value").unwrap_or_default().to_string(),
            )
        })
        .collect();
    (action, fields)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    &fields
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
        .1
}

/// This test's own OAuth 1.0 HMAC-SHA1 (RFC 5849 3.4): the signature a tool computes
/// for a form POSTed to `action` with `fields`, under `secret`.
fn expected_signature(action: &str, fields: &[(String, String)], secret: &str) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    // The query's pairs are signed decoded, as a form decodes them (`+` is a space).
    fn dec(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }
    let (base, query) = action.split_once('?').unwrap_or((action, ""));
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .chain(
            fields
                .iter()
                .filter(|(n, _)| n != "oauth_signature")
                .cloned(),
        )
        .map(|(k, v)| (enc(&k), enc(&v)))
        .collect();
    params.sort();
    let normalized: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let text = format!("POST&{}&{}", enc(base), enc(&normalized.join("&")));
    let mut mac = Hmac::<Sha1>::new_from_slice(format!("{}&", enc(secret)).as_bytes()).unwrap();
    mac.update(text.as_bytes());
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[test]
fn every_such_block_of_both_exports_renders_for_a_learner() {
    let f = Fixture::with_plugins(PRODUCT_PLUGINS);
    for (name, course, blocks) in [
        ("openedx-test-course", TEST_COURSE, TEST_COURSE_BLOCKS),
        ("openedx-demo-course", DEMO_COURSE, DEMO_COURSE_BLOCKS),
    ] {
        let report = import(&f, name);
        for (tag, _) in TYPES {
            assert!(
                !report.unsupported.contains_key(*tag),
                "{name}: {tag} is still unsupported: {:?}",
                report.unsupported
            );
        }
        let loaded = f.host.course(course).unwrap();
        for (usage, block_type, shown) in blocks {
            assert_eq!(
                loaded.block(usage).unwrap().def.block_type,
                *block_type,
                "{usage}"
            );
            let html = learner_page(&f, course, usage, "ada");
            assert!(
                html.contains(&format!("data-block-type=\"{block_type}\"")),
                "{usage}: {html}"
            );
            assert!(
                html.contains(shown),
                "{name} {usage} shows no {shown:?}: {html}"
            );
            assert!(
                !html.contains("lti-staff-notes"),
                "learners see no staff notes"
            );
        }
    }
    // The demo course's LTI blocks are signed with the passports of its policy.json.
    let html = learner_page(&f, DEMO_COURSE, "94231b63c6c34ead863d2876a4762751", "ada");
    let (action, fields) = form_fields(&html);
    assert_eq!(field(&fields, "oauth_consumer_key"), "codeboard_key_1");
    assert_eq!(
        field(&fields, "oauth_signature"),
        expected_signature(&action, &fields, "codeboard_secret_1234")
    );
    assert!(!html.contains("codeboard_secret_1234"));
    let jupyter = learner_page(&f, DEMO_COURSE, "8e71d278e94f4913bc564cc6141fde53", "ada");
    let (_, fields) = form_fields(&jupyter);
    assert!(
        field(&fields, "custom_next")
            .starts_with("https://openjupyter-demox.xopic.de/hub/user-redirect/git-pull?repo=")
    );
    // Staff see what the test course's empty LTI blocks lack.
    let staff = f.render(
        TEST_COURSE,
        "68db40c5640942b88d90b4261410f7b0",
        User::staff("sam"),
        View::Staff,
    );
    assert!(
        staff.html.contains("No launch URL") && staff.html.contains("no lti_id"),
        "{}",
        staff.html
    );
}

#[test]
fn handlers_store_the_learners_state_and_publish_the_xblocks_events() {
    let f = Fixture::with_plugins(PRODUCT_PLUGINS);
    import(&f, "openedx-test-course");
    let ada = User::learner("ada");
    let state = |usage: &str| -> Value {
        let json = f
            .host
            .storage()
            .user_state(TEST_COURSE, "ada", usage)
            .unwrap()
            .unwrap();
        serde_json::from_str(&json).unwrap()
    };
    let published = |name: &str, usage: &str| -> Vec<Value> {
        f.events
            .events()
            .into_iter()
            .filter(|e| e.name == name && e.usage_id.as_deref() == Some(usage))
            .map(|e| e.data)
            .collect()
    };

    // Done: marked complete as the page's form posts it, then shown as such.
    let done = "fba1965990764842bd555eb5c82b371d";
    let answer = f
        .host
        .handle(
            TEST_COURSE,
            done,
            &ada,
            "toggle_button",
            &json!({"answer": [1]}),
        )
        .unwrap();
    assert_eq!(answer, json!({"state": true}));
    assert_eq!(state(done), json!({"done": true}));
    assert_eq!(
        published("edx.done.toggled", done),
        vec![json!({"done": true})]
    );
    assert_eq!(
        published("grade", done),
        vec![json!({"value": 1, "max_value": 1})]
    );
    assert!(learner_page(&f, TEST_COURSE, done, "ada").contains(">Unmark</button>"));
    let err = f.host.handle(
        TEST_COURSE,
        done,
        &ada,
        "toggle_button",
        &json!({"answer": ["x"]}),
    );
    assert!(format!("{:#}", err.unwrap_err()).contains("toggle_button expects"));
    assert_eq!(
        state(done),
        json!({"done": true}),
        "a refused call stores nothing"
    );
    assert_eq!(published("edx.done.toggled", done).len(), 1);

    // Rate: text and vote, then the page shows both.
    let rate = "a286d13cb60c423db55d2664e3b34d2e";
    f.host
        .handle(
            TEST_COURSE,
            rate,
            &ada,
            "feedback",
            &json!({"answer": ["More examples", 1]}),
        )
        .unwrap();
    assert_eq!(
        state(rate),
        json!({"user_vote": 1, "user_freeform": "More examples"})
    );
    assert_eq!(
        published("edx.ratexblock.likert_rate", rate),
        vec![json!({"old_vote": -1, "new_vote": 1})]
    );
    assert_eq!(
        published("edx.ratexblock.freeform_feedback", rate),
        vec![json!({"old_freeform": "", "new_freeform": "More examples"})]
    );
    let page = learner_page(&f, TEST_COURSE, rate, "ada");
    assert!(
        page.contains(">More examples</textarea>") && page.contains("value=\"1\" checked"),
        "{page}"
    );
    let err = f.host.handle(
        TEST_COURSE,
        rate,
        &ada,
        "feedback",
        &json!({"answer": ["x", 9]}),
    );
    assert!(format!("{:#}", err.unwrap_err()).contains("not on the scale"));
    assert_eq!(state(rate)["user_vote"], 1);

    // The Google blocks publish that they were shown, as their script does.
    learner_page(&f, TEST_COURSE, "c1e0b2bd5e3243708f8bdc0e83898c1b", "ada");
    let shown = published(
        "edx.googlecomponent.calendar.displayed",
        "c1e0b2bd5e3243708f8bdc0e83898c1b",
    );
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["displayed_in"], "iframe");
}

#[test]
fn a_launch_is_signed_with_the_courses_passport_and_verifies() {
    let extra = "<lti url_name=\"l1\" display_name=\"Tool\" lti_id=\"tool\" \
        launch_url=\"https://tool.example/launch?course=7&amp;x=a+b\" has_score=\"true\" \
        custom_parameters=\"[&quot;chapter = 3&quot;]\" ask_to_send_username=\"True\"/>\n\
        <lti_consumer url_name=\"c1\" lti_id=\"nobody\" launch_url=\"https://tool.example/c\" launch_target=\"new_window\"/>";
    let mut files = small_course(extra);
    files.push((
        "policies/r1/policy.json".into(),
        serde_json::to_vec(&json!({"course/r1": {"lti_passports": [
            "broken:with:too:many:parts-secretish",
            " tool : key-123 : s3cr3t&! ",
        ]}}))
        .unwrap(),
    ));
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &files);
    let f = Fixture::with_plugins(PRODUCT_PLUGINS);
    let (report, _) = f
        .host
        .import_course(dir.path(), &ImportOptions::default())
        .unwrap();
    let warning = report
        .warnings
        .iter()
        .find(|w| w.contains("lti_passports entry 0"))
        .unwrap();
    assert!(
        warning.contains("\"broken\"") && !warning.contains("secretish"),
        "{warning}"
    );

    let html = learner_page(&f, SMALL_COURSE, "l1", "ada");
    let (action, fields) = form_fields(&html);
    assert_eq!(action, "https://tool.example/launch?course=7&x=a+b");
    assert_eq!(field(&fields, "oauth_consumer_key"), "key-123");
    assert_eq!(field(&fields, "oauth_signature_method"), "HMAC-SHA1");
    assert_eq!(field(&fields, "oauth_version"), "1.0");
    assert_eq!(field(&fields, "custom_chapter"), "3");
    assert_eq!(field(&fields, "lis_person_sourcedid"), "ada");
    assert_eq!(field(&fields, "context_id"), SMALL_COURSE);
    assert_eq!(field(&fields, "roles"), "Student");
    assert_ne!(
        field(&fields, "user_id"),
        "ada",
        "the tool gets an anonymous id"
    );
    assert_eq!(
        field(&fields, "oauth_signature"),
        expected_signature(&action, &fields, "s3cr3t&!")
    );
    assert_ne!(
        field(&fields, "oauth_signature"),
        expected_signature(&action, &fields, "another secret"),
        "the check tells secrets apart"
    );
    assert!(
        !html.contains("s3cr3t"),
        "the secret never reaches the page"
    );
    // Another learner, another anonymous id; the same learner keeps theirs.
    let (_, bob) = form_fields(&learner_page(&f, SMALL_COURSE, "l1", "bob"));
    let (_, ada_again) = form_fields(&learner_page(&f, SMALL_COURSE, "l1", "ada"));
    assert_ne!(field(&bob, "user_id"), field(&fields, "user_id"));
    assert_eq!(field(&ada_again, "user_id"), field(&fields, "user_id"));

    // No passport for its lti_id: signed empty, as Open edX does; staff are told why.
    let (_, unsigned) = form_fields(&learner_page(&f, SMALL_COURSE, "c1", "ada"));
    assert_eq!(field(&unsigned, "oauth_consumer_key"), "");
    let staff = f.render(SMALL_COURSE, "c1", User::staff("sam"), View::Staff);
    assert!(
        staff.html.contains("has no entry \"nobody:key:secret\""),
        "{}",
        staff.html
    );
    let staff = f.render(SMALL_COURSE, "l1", User::staff("sam"), View::Staff);
    assert!(
        staff.html.contains("key-123") && staff.html.contains("form-action"),
        "{}",
        staff.html
    );
}

#[test]
fn a_wrongly_typed_attribute_fails_the_import_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(
        dir.path(),
        &small_course("<google-calendar url_name=\"g\" default_view=\"month\"/>"),
    );
    let f = Fixture::with_plugins(PRODUCT_PLUGINS);
    let err = format!(
        "{:#}",
        f.host
            .import_course(dir.path(), &ImportOptions::default())
            .unwrap_err()
    );
    assert!(
        err.contains("course/r1.xml:") && err.contains("default_view=\"month\""),
        "{err}"
    );
    assert!(f.host.course(SMALL_COURSE).is_err(), "nothing stored");
}
