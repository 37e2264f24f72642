//! `thumbs`: the XBlock SDK's thumbs block (xblock-sdk `sample_xblocks/thumbs`), the
//! classic example of an XBlock with client-side code: "up" and "down" buttons whose votes
//! every learner of the block shares.
//!
//! - fields: `display_name` ("Thumbs") and `prompt` ("Was this helpful?").
//! - render: the prompt, the two buttons with the counts (the block's tallies `up` and
//!   `down`), and `thumbs.css` / `thumbs.js` from `static/`, the script's `ThumbsBlock`
//!   called with `{"voted": "up"|"down"|null}`. The host draws the block in its own
//!   sandboxed frame, where the buttons call `vote` and show the counts it answers.
//! - handler `vote` with `{"direction": "up"|"down"}`: one vote per learner (the XBlock's
//!   `voted` field): adds 1 to that tally, keeps the learner's vote, publishes
//!   `xblock.thumbs.voted` (`{direction}`) so a vote can be an experiment's goal, and
//!   answers `{up, down, voted}`. A second vote, or any other payload, is refused and
//!   nothing is stored.
//! - scenarios (`scenarios.json`, the workbench's "Scenarios"): one block; two blocks
//!   beside an html block, each with its own tallies.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use xbhost_sdk::html::escape;
use xbhost_sdk::{Block, BlockError, BlockResult, Context, Fragment, View};

xbhost_sdk::client_assets!("thumbs.css", "thumbs.js");
xbhost_sdk::scenarios!("scenarios.json");

pub struct Thumbs;

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: String,
    pub prompt: String,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            display_name: "Thumbs".into(),
            prompt: "Was this helpful?".into(),
        }
    }
}

/// The two ways to vote, as tally keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

impl Direction {
    fn key(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// What the block keeps per learner: their vote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct State {
    pub voted: Option<Direction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vote {
    direction: Direction,
}

/// The counts as (up, down).
fn counts(cx: &Context<'_, Fields>) -> BlockResult<(i64, i64)> {
    let tallies = cx.tallies()?;
    let count = |d: Direction| tallies.get(d.key()).copied().unwrap_or(0);
    Ok((count(Direction::Up), count(Direction::Down)))
}

impl Block for Thumbs {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, _view: View) -> BlockResult<Fragment> {
        let f = cx.fields();
        let voted = cx.state::<State>()?.unwrap_or_default().voted;
        let (up, down) = counts(cx)?;
        let pressed = |d: Direction| voted == Some(d);
        let html = format!(
            "<div class=\"thumbs\"><p class=\"thumbs-prompt\">{}</p>\
             <button type=\"button\" class=\"upvote\" data-direction=\"up\" aria-pressed=\"{}\">\u{1F44D} <span class=\"count\">{up}</span></button>\
             <button type=\"button\" class=\"downvote\" data-direction=\"down\" aria-pressed=\"{}\">\u{1F44E} <span class=\"count\">{down}</span></button>\
             <p class=\"thumbs-note\" role=\"status\">{}</p></div>",
            escape(&f.prompt),
            pressed(Direction::Up),
            pressed(Direction::Down),
            if voted.is_some() {
                "You have voted."
            } else {
                ""
            },
        );
        Ok(Fragment::html(html)
            .with_title(f.display_name.clone())
            .add_css("thumbs.css")
            .add_javascript("thumbs.js")
            .initialize_js("ThumbsBlock", &json!({ "voted": voted })))
    }

    fn handle(cx: &Context<'_, Fields>, name: &str, payload: Value) -> BlockResult<Value> {
        if name != "vote" {
            return Err(BlockError::new(format!(
                "the thumbs block has no handler {name:?} (it has vote)"
            )));
        }
        let vote: Vote = serde_json::from_value(payload).map_err(|e| {
            BlockError::new(format!(
                "vote expects {{\"direction\": \"up\" or \"down\"}}: {e}"
            ))
        })?;
        if let Some(before) = cx.state::<State>()?.unwrap_or_default().voted {
            return Err(BlockError::new(format!(
                "you have already voted {}",
                before.key()
            )));
        }
        cx.add_tally(vote.direction.key(), 1)?;
        cx.set_state(&State {
            voted: Some(vote.direction),
        })?;
        cx.publish(
            "xblock.thumbs.voted",
            &json!({ "direction": vote.direction }),
        )?;
        let (up, down) = counts(cx)?;
        Ok(json!({ "up": up, "down": down, "voted": vote.direction }))
    }
}

xbhost_sdk::export_block!(Thumbs);

#[cfg(test)]
mod tests {
    use super::*;
    use xbhost_sdk::testing::TestHost;

    fn host() -> TestHost {
        TestHost::new("thumbs", "thumbs1").with_client_assets(CLIENT_ASSETS)
    }

    #[test]
    fn renders_counts_and_its_client_code() {
        let host = host().with_tallies([("up", 3), ("down", 1)]);
        let f = host.render::<Thumbs>(View::Student).unwrap();
        assert!(
            f.html.contains("<span class=\"count\">3</span>"),
            "{}",
            f.html
        );
        assert!(
            f.html.contains("<span class=\"count\">1</span>"),
            "{}",
            f.html
        );
        assert_eq!(f.client.resources, ["thumbs.css", "thumbs.js"]);
        assert_eq!(
            f.client.initialize,
            Some(("ThumbsBlock".into(), "{\"voted\":null}".into()))
        );
    }

    #[test]
    fn one_vote_per_learner() {
        let host = host();
        let answer = host
            .handle::<Thumbs>("vote", json!({"direction": "up"}))
            .unwrap();
        assert_eq!(answer, json!({"up": 1, "down": 0, "voted": "up"}));
        assert_eq!(host.stored_tallies().get("up"), Some(&1));
        assert_eq!(host.events()[0].0, "xblock.thumbs.voted");
        let again = host
            .handle::<Thumbs>("vote", json!({"direction": "down"}))
            .unwrap_err();
        assert!(again.0.contains("already voted up"), "{}", again.0);
        assert_eq!(host.stored_tallies().get("down"), None);
        let f = host.render::<Thumbs>(View::Student).unwrap();
        assert!(
            f.html.contains("aria-pressed=\"true\">\u{1F44D}"),
            "{}",
            f.html
        );
        assert_eq!(f.client.initialize.unwrap().1, "{\"voted\":\"up\"}");
    }

    #[test]
    fn refuses_other_payloads() {
        let host = host();
        for bad in [
            json!({"direction": "sideways"}),
            json!("up"),
            json!({"direction": "up", "x": 1}),
        ] {
            assert!(host.handle::<Thumbs>("vote", bad).is_err());
        }
        assert!(host.handle::<Thumbs>("nope", json!({})).is_err());
        assert!(host.stored_tallies().is_empty());
        assert_eq!(host.stored_state(), None);
    }

    #[test]
    fn its_scenarios_parse_and_their_fields_fit() {
        let scenarios = xbhost_sdk::scenarios::parse(SCENARIOS).unwrap();
        let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["one-vote", "two-blocks"]);
        for block in scenarios.iter().flat_map(|s| &s.blocks) {
            if block.block_type == "thumbs" {
                let host = host().fields(block.fields.clone());
                assert!(host.render::<Thumbs>(View::Student).is_ok(), "{block:?}");
            }
        }
    }

    #[test]
    fn the_native_harness_checks_the_shipped_files() {
        struct Wrong;
        impl Block for Wrong {
            type Fields = Fields;
            fn render(_: &Context<'_, Fields>, _: View) -> BlockResult<Fragment> {
                Ok(Fragment::html("x").add_javascript("missing.js"))
            }
        }
        let err = host().render::<Wrong>(View::Student).unwrap_err();
        assert!(err.0.contains("missing.js"), "{}", err.0);
    }
}
