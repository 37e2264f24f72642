//! Test plugin, written against the raw bindings (no SDK), so it can do what the SDK would
//! not let it: it tries every way a block could forge the host's data or answer without
//! bounds. Its behaviour is chosen by the `mode` field (a JSON string):
//!
//! - `events` (render): publishes the host's own events (assignment, exposure naming a
//!   child that does not exist, block failure), a goal event `problem_check` with
//!   `correct: true`, one event of 1 MiB and 64 events of 16 KiB; the page shows a JSON
//!   report (`<script class="probe">`) of what the host accepted.
//! - `tags` (render): writes 100 new course tag keys and 100 new global ones per request
//!   (numbered after those already stored), reporting how many the host accepted.
//! - `title` (render): a 1 MiB title and tooltip.
//! - `answer-huge` (handle): answers 4 MB of JSON string.
//! - `answer-not-json` (handle): writes a course tag, a global tag, its state and an event,
//!   then answers text that is not JSON.
//! - `messages` (validate): 1,000 validation messages of 10 KiB each.
//! - `shared` (render, contract 0.1.1): reads a block its `sources` field does not list,
//!   sends the host's selection event, adds to tallies with an empty, a 256-byte and 300
//!   new keys, asks for `u32::MAX` of its children, and renders every child whatever was
//!   picked; the page shows a JSON report of what the host answered. Its
//!   `visible-children` picks one child and then lists them all.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit", world: "block-plugin" });

    use exports::xbhost::block::block::Guest;
    use xbhost::block::types::{Fragment, HostError, Severity, ValidationMessage, View};
    use xbhost::block::user_tags::Scope;
    use xbhost::block::{
        children, context, events, selection, sources, tallies, user_state, user_tags,
    };

    struct Forger;

    fn mode() -> String {
        let fields = context::fields();
        // {"mode": "..."}: found without a JSON parser.
        fields
            .split("\"mode\"")
            .nth(1)
            .and_then(|rest| rest.split('"').nth(1))
            .unwrap_or("")
            .to_string()
    }

    fn outcome(r: Result<(), HostError>) -> String {
        match r {
            Ok(()) => "\"accepted\"".to_string(),
            Err(e) => format!("{:?}", format!("{e:?}")),
        }
    }

    fn events_report() -> String {
        let mut report = Vec::new();
        for (name, data) in [
            (
                "xmodule.partitions.assigned_user_to_partition",
                r#"{"group_id":1,"group_name":"forged","partition_id":0,"partition_name":"forged"}"#,
            ),
            (
                "xblock.split_test.child_render",
                r#"{"child_id":"no-such-block","user_partition_id":0,"group_id":1}"#,
            ),
            (
                "xbhost.block.failed",
                r#"{"plugin":"html","kind":"trap","error":"forged"}"#,
            ),
        ] {
            report.push(format!(
                "{:?}: {}",
                name,
                outcome(events::publish(name, data))
            ));
        }
        report.push(format!(
            "\"problem_check\": {}",
            outcome(events::publish(
                "problem_check",
                r#"{"correct":true,"problem_id":"forged"}"#
            ))
        ));
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(1 << 20));
        report.push(format!(
            "\"big\": {}",
            outcome(events::publish("forger.big", &big))
        ));
        let medium = format!("{{\"pad\":\"{}\"}}", "x".repeat(16 * 1024 - 16));
        let mut accepted = 0;
        let mut refusal = String::from("null");
        for _ in 0..64 {
            match events::publish("forger.medium", &medium) {
                Ok(()) => accepted += 1,
                Err(e) => {
                    refusal = format!("{:?}", format!("{e:?}"));
                    break;
                }
            }
        }
        report.push(format!(
            "\"medium\": {{\"accepted\": {accepted}, \"refusal\": {refusal}}}"
        ));
        format!("{{{}}}", report.join(", "))
    }

    fn tags_report() -> String {
        let mut report = Vec::new();
        for (label, scope) in [("course", Scope::Course), ("user", Scope::User)] {
            // Continue numbering after the keys earlier requests stored.
            let mut start = 0;
            while matches!(
                user_tags::get(scope, &format!("forger.{start}")),
                Ok(Some(_))
            ) {
                start += 1;
            }
            let mut accepted = 0;
            let mut refusal = String::from("null");
            for i in start..start + 100 {
                match user_tags::set(scope, &format!("forger.{i}"), "x") {
                    Ok(()) => accepted += 1,
                    Err(e) => {
                        refusal = format!("{:?}", format!("{e:?}"));
                        break;
                    }
                }
            }
            report.push(format!(
                "{label:?}: {{\"start\": {start}, \"accepted\": {accepted}, \"refusal\": {refusal}}}"
            ));
        }
        format!("{{{}}}", report.join(", "))
    }

    fn shared_report() -> String {
        let mut report = Vec::new();
        let quoted = |r: Result<String, HostError>| match r {
            Ok(v) => format!("{{\"ok\": {v:?}}}"),
            Err(e) => format!("{{\"err\": {:?}}}", format!("{e:?}")),
        };
        report.push(format!(
            "\"unlisted_source\": {}",
            quoted(sources::state_of("victim").map(|s| format!("{:?}", s.state)))
        ));
        report.push(format!(
            "\"selection_event\": {}",
            outcome(events::publish(
                "edx.librarycontentblock.content.assigned",
                r#"{"added":["victim"],"result":["victim"]}"#
            ))
        ));
        report.push(format!(
            "\"empty_key\": {}",
            quoted(tallies::add("", 1).map(|n| n.to_string()))
        ));
        report.push(format!(
            "\"long_key\": {}",
            quoted(tallies::add(&"k".repeat(256), 1).map(|n| n.to_string()))
        ));
        let mut accepted = 0;
        let mut refusal = String::from("null");
        for i in 0..300 {
            match tallies::add(&format!("forger.{i}"), 1) {
                Ok(_) => accepted += 1,
                Err(e) => {
                    refusal = format!("{:?}", format!("{e:?}"));
                    break;
                }
            }
        }
        report.push(format!(
            "\"keys\": {{\"accepted\": {accepted}, \"refusal\": {refusal}}}"
        ));
        // One child picked, then every child rendered: the host hides the others.
        let picked = selection::selected(1).unwrap_or_default();
        report.push(format!("\"picked\": {}", picked.len()));
        let mut shown = 0;
        for child in context::children() {
            if let Ok(f) = children::render_child(&child, View::Student, None)
                && !f.hidden
            {
                shown += 1;
            }
        }
        report.push(format!("\"shown\": {shown}"));
        let all = selection::selected(u32::MAX).map(|p| p.len());
        report.push(format!(
            "\"picked_max\": {}",
            quoted(all.map(|n| n.to_string()))
        ));
        format!("{{{}}}", report.join(", "))
    }

    impl Guest for Forger {
        fn render(_view: View) -> Result<Fragment, String> {
            let mut fragment = Fragment {
                html: String::new(),
                hidden: false,
                title: None,
                icon: None,
                tooltip: None,
            };
            match mode().as_str() {
                "events" => {
                    fragment.html = format!(
                        "<script type=\"application/json\" class=\"probe\">{}</script>",
                        events_report()
                    )
                }
                "tags" => {
                    fragment.html = format!(
                        "<script type=\"application/json\" class=\"probe\">{}</script>",
                        tags_report()
                    )
                }
                "shared" => {
                    fragment.html = format!(
                        "<script type=\"application/json\" class=\"probe\">{}</script>",
                        shared_report()
                    )
                }
                "title" => {
                    fragment.html = "<p>forger</p>".into();
                    fragment.title = Some("t".repeat(1 << 20));
                    fragment.tooltip = Some("t".repeat(1 << 20));
                }
                _ => fragment.html = "<p>forger</p>".into(),
            }
            Ok(fragment)
        }

        fn visible_children() -> Result<Vec<String>, String> {
            // `shared`: picks one child, then claims every child is visible.
            if mode() == "shared" {
                let _ = selection::selected(1);
            }
            Ok(context::children())
        }

        fn validate() -> Vec<ValidationMessage> {
            if mode() != "messages" {
                return Vec::new();
            }
            (0..1000)
                .map(|_| ValidationMessage {
                    severity: Severity::Warning,
                    text: "m".repeat(10 * 1024),
                })
                .collect()
        }

        fn handle(_name: String, _payload: String) -> Result<String, String> {
            match mode().as_str() {
                "answer-huge" => Ok(format!("\"{}\"", "a".repeat(4_000_000))),
                "answer-not-json" => {
                    let _ = user_tags::set(Scope::Course, "forger.refused", "kept?");
                    let _ = user_tags::set(Scope::User, "forger.refused", "kept?");
                    let _ = user_state::set(r#"{"refused":"kept?"}"#);
                    let _ = events::publish("forger.refused", r#"{"kept":"?"}"#);
                    Ok("this is not JSON".into())
                }
                _ => Ok("{}".into()),
            }
        }
    }

    export!(Forger);

    const METADATA: &[u8] = br#"{"name":"forger","version":"0.1.0","contract":"0.1.0"}"#;
    #[used]
    #[unsafe(link_section = "xbhost-plugin")]
    static PLUGIN_METADATA: [u8; METADATA.len()] = {
        let mut out = [0u8; METADATA.len()];
        let mut i = 0;
        while i < out.len() {
            out[i] = METADATA[i];
            i += 1;
        }
        out
    };
}
