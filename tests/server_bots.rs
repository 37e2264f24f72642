//! Bot detection over real HTTP against `xbhost serve`: a bearer token (an LMS back end
//! fetching for a named learner with `curl` or `python-requests`) is not judged by its
//! User-Agent, so its learners are enrolled and their handler events carry membership; a
//! cookie session (a browser) with a bot's User-Agent gets control, is enrolled in
//! nothing, and neither its page nor its handler call sends an event; a token may ask for
//! its bearer requests to be judged (`check_user_agent`).

use std::collections::BTreeMap;

use reqwest::header;
use serde_json::{Value, json};
use xbhost::events::{ASSIGNED_EVENT, CHILD_RENDER_EVENT};
use xbhost::server::auth::{Claims, Role};
use xbhost_tests::DEMO_COURSE;
use xbhost_tests::http::{client, send};
use xbhost_tests::served::{Served, keys, learner_token};
use xbhost_tests::sign_in::page_csrf;

const CURL: &str = "curl/8.5.0";
const PYTHON: &str = "python-requests/2.31.0";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0";

/// The demo course's partitions: id to name.
const PARTITIONS: [(u64, &str); 2] = [(0, "Explanation style"), (1, "Hints")];

/// How a request authenticates: a bearer token, or the session cookie (with the CSRF
/// token of the page it came from, for posts).
#[derive(Clone)]
enum Credential {
    Bearer(String),
    Cookie(String),
}

impl Credential {
    fn cookie_of(user: &str) -> Credential {
        Credential::Cookie(format!("xbhost_session={}", learner_token(user)))
    }

    fn apply(&self, request: reqwest::RequestBuilder, user_agent: &str) -> reqwest::RequestBuilder {
        let request = request.header(header::USER_AGENT, user_agent);
        match self {
            Credential::Bearer(token) => request.bearer_auth(token),
            Credential::Cookie(cookie) => request.header(header::COOKIE, cookie),
        }
    }
}

/// A client's visit: the unit as JSON, its HTML page, and one correct submission of the
/// exercise (`check_sum`, outside every split test), all with this User-Agent.
struct Visit {
    render: Value,
    html: String,
    answer: Value,
}

async fn visit(served: &Served, credential: &Credential, user_agent: &str) -> Visit {
    let c = client();
    let unit = served.block_url("unit_1");
    let (status, render) =
        send(credential.apply(c.get(format!("{unit}?format=json")), user_agent)).await;
    assert_eq!(status, 200, "{user_agent}: {render}");
    let page = credential
        .apply(c.get(&unit), user_agent)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "{user_agent}");
    let html = page.text().await.unwrap();
    let mut post = credential.apply(
        c.post(format!("{}/handler/submit", served.block_url("check_sum"))),
        user_agent,
    );
    if let Credential::Cookie(_) = credential {
        post = post.header("x-csrf-token", page_csrf(&html));
    }
    let (status, answer) = send(post.json(&json!({"answer": 1}))).await;
    assert_eq!(status, 200, "{user_agent}: {answer}");
    assert_eq!(answer["correct"], true, "{user_agent}: {answer}");
    Visit {
        render,
        html,
        answer,
    }
}

/// `GET .../users/USER/assignments` as USER: partition id to (group id, stored).
async fn assignments(served: &Served, user: &str) -> BTreeMap<u64, (u64, bool)> {
    let (status, body) = send(
        client()
            .get(format!(
                "{}/courses/{DEMO_COURSE}/users/{user}/assignments",
                served.url
            ))
            .bearer_auth(learner_token(user)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let group = v["group"]["id"].as_u64().expect("a group");
            (
                v["partition_id"].as_u64().unwrap(),
                (group, v["stored"] == true),
            )
        })
        .collect()
}

/// The statuses a JSON render gives per partition.
fn statuses(render: &Value) -> BTreeMap<u64, String> {
    render["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["partition_id"].as_u64().unwrap(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The group names of the demo's partitions, by partition and group id.
fn group_name(partition: u64, group: u64) -> &'static str {
    match (partition, group) {
        (0, 0) => "Text",
        (0, 1) => "Video",
        (1, 0) => "No hints",
        (1, 1) => "Hints",
        (1, 2) => "Hints and examples",
        other => panic!("no group {other:?} in the demo"),
    }
}

/// Every event of the stopped server's log, per user.
fn events_by_user(data: &std::path::Path) -> BTreeMap<String, Vec<Value>> {
    let log = std::fs::read_to_string(data.join("events.jsonl")).unwrap_or_default();
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in log.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        let user = event["user_id"].as_str().unwrap_or_default().to_string();
        out.entry(user).or_default().push(event);
    }
    out
}

fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["name"] == name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lms_fetching_with_curl_or_python_requests_enrols_its_learners() {
    let served = Served::demo(&[]);
    let learners = [("lms-curl-learner", CURL), ("lms-python-learner", PYTHON)];
    let mut drawn = BTreeMap::new();
    for (learner, user_agent) in learners {
        // What a browser's first page would store for this learner: the draw, not stored.
        let before = assignments(&served, learner).await;
        assert!(before.values().all(|(_, stored)| !stored), "{before:?}");
        assert_eq!(before.len(), PARTITIONS.len());
        let v = visit(
            &served,
            &Credential::Bearer(learner_token(learner)),
            user_agent,
        )
        .await;
        let expected: BTreeMap<u64, String> = PARTITIONS
            .iter()
            .map(|(p, _)| (*p, "enrolled".to_string()))
            .collect();
        assert_eq!(statuses(&v.render), expected, "{user_agent}: {}", v.render);
        let shown: BTreeMap<u64, u64> =
            serde_json::from_value::<BTreeMap<String, u64>>(v.render["assignments"].clone())
                .unwrap()
                .into_iter()
                .map(|(p, g)| (p.parse().unwrap(), g))
                .collect();
        let draw: BTreeMap<u64, u64> = before.iter().map(|(p, (g, _))| (*p, *g)).collect();
        assert_eq!(shown, draw, "{user_agent}: the browser's group");
        // The page shows that group's condition of the explanation experiment.
        let video = v.html.contains("data-usage-id=\"explanation_a_video\"");
        assert_eq!(video, draw[&0] == 1, "{user_agent}: {}", v.html);
        let after = assignments(&served, learner).await;
        let stored: BTreeMap<u64, (u64, bool)> =
            draw.iter().map(|(p, g)| (*p, (*g, true))).collect();
        assert_eq!(after, stored, "{user_agent}: the draw is stored");
        assert_eq!(v.answer["attempts"], 1, "{}", v.answer);
        drawn.insert(learner, draw);
    }
    let data = served.stop();
    let events = events_by_user(data.path());
    for (learner, user_agent) in learners {
        let mine = events.get(learner).map(Vec::as_slice).unwrap_or_default();
        let draw = &drawn[learner];
        let assigned = named(mine, ASSIGNED_EVENT);
        assert_eq!(
            assigned.len(),
            PARTITIONS.len(),
            "{user_agent}: one assignment event per partition: {mine:?}"
        );
        assert!(
            !named(mine, CHILD_RENDER_EVENT).is_empty(),
            "{user_agent}: an exposure: {mine:?}"
        );
        let checks = named(mine, "problem_check");
        assert_eq!(
            checks.len(),
            1,
            "{user_agent}: the handler's event: {mine:?}"
        );
        let membership = &checks[0]["experiments"];
        let mut enrolled: Vec<&str> = membership["enrolled"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        enrolled.sort();
        let mut names: Vec<&str> = PARTITIONS.iter().map(|(_, n)| *n).collect();
        names.sort();
        assert_eq!(enrolled, names, "{user_agent}: {membership}");
        for (partition, name) in PARTITIONS {
            assert_eq!(
                membership["assigned"][name],
                group_name(partition, draw[&partition]),
                "{user_agent}: {membership}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_on_a_cookie_session_gets_control_and_sends_nothing_from_pages_or_handlers() {
    let served = Served::demo(&[]);
    // A token that asks for its bearer requests to be judged (an LMS that relays its
    // learners' browsers' User-Agent).
    let relayed = {
        let roles = BTreeMap::from([(DEMO_COURSE.to_string(), Role::Learner)]);
        let mut claims = Claims::new("relayed-bot", "relayed-bot", roles, 3600);
        claims.check_user_agent = true;
        Credential::Bearer(keys().issue(&claims).unwrap())
    };
    // A browser's sign-in token (it carries the sign-in nonce, so it was a cookie's)
    // replayed by a script as a bearer token: judged as the cookie would be.
    let replayed_cookie = {
        let roles = BTreeMap::from([(DEMO_COURSE.to_string(), Role::Learner)]);
        let mut claims = Claims::new("replayed-cookie", "replayed-cookie", roles, 3600);
        claims.nonce = Some("nonce-of-a-browser-sign-in".into());
        Credential::Bearer(keys().issue(&claims).unwrap())
    };
    let bots = [
        ("cookie-curl", Credential::cookie_of("cookie-curl"), CURL),
        (
            "cookie-googlebot",
            Credential::cookie_of("cookie-googlebot"),
            GOOGLEBOT,
        ),
        ("relayed-bot", relayed, GOOGLEBOT),
        ("replayed-cookie", replayed_cookie, CURL),
    ];
    for (user, credential, user_agent) in &bots {
        let v = visit(&served, credential, user_agent).await;
        let bot: BTreeMap<u64, String> = PARTITIONS
            .iter()
            .map(|(p, _)| (*p, "bot".to_string()))
            .collect();
        assert_eq!(statuses(&v.render), bot, "{user}: {}", v.render);
        assert_eq!(v.render["assignments"], json!({}), "{user}: {}", v.render);
        // Control: the first group's condition, on the page and in the JSON render.
        for html in [v.html.as_str(), v.render["html"].as_str().unwrap()] {
            assert!(
                html.contains("data-usage-id=\"explanation_a_text\""),
                "{user}: {html}"
            );
            assert!(
                !html.contains("data-usage-id=\"explanation_a_video\""),
                "{user}: {html}"
            );
        }
        // Nothing stored for the experiments by the page or the handler call.
        let after = assignments(&served, user).await;
        assert!(
            after.values().all(|(_, stored)| !stored),
            "{user}: {after:?}"
        );
        // The block's own state is kept, as for a bot's page.
        let (status, state) = send(
            client()
                .get(format!(
                    "{}/courses/{DEMO_COURSE}/users/{user}/state/check_sum",
                    served.url
                ))
                .bearer_auth(learner_token(user)),
        )
        .await;
        assert_eq!(status, 200, "{state}");
        assert_eq!(state["state"]["answer"], json!([1]), "{user}: {state}");
    }
    // The same kind of session from a browser is an ordinary learner.
    let browser = visit(&served, &Credential::cookie_of("cookie-firefox"), FIREFOX).await;
    assert!(
        statuses(&browser.render).values().all(|s| s == "enrolled"),
        "{}",
        browser.render
    );
    let data = served.stop();
    let events = events_by_user(data.path());
    for (user, _, user_agent) in &bots {
        assert!(
            !events.contains_key(*user),
            "{user} ({user_agent}) sent events: {:?}",
            events[*user]
        );
    }
    let firefox = &events["cookie-firefox"];
    assert_eq!(
        named(firefox, ASSIGNED_EVENT).len(),
        PARTITIONS.len(),
        "{firefox:?}"
    );
    let checks = named(firefox, "problem_check");
    assert_eq!(checks.len(), 1, "{firefox:?}");
    assert_eq!(
        checks[0]["experiments"]["enrolled"]
            .as_array()
            .unwrap()
            .len(),
        PARTITIONS.len(),
        "{}",
        checks[0]
    );
}
