//! `xbhost serve` over real HTTP, who may do what: the key the server starts with (none,
//! too short, from a file), 401 for each bad token on each route, 403 for each role, CSRF
//! on browser posts and the dev sign-in, LMS sessions and signing out, and secure cookies.
//! (The sign-in's binding to its browser and the token checks are `server_sign_in.rs`.)

use std::collections::BTreeMap;

use reqwest::header;
use serde_json::{Value, json};
use xbhost::server::auth::{Claims, Role, TokenKeys};
use xbhost_tests::http::{client, error_of, send};
use xbhost_tests::served::{Served, admin_token, keys, learner_token, staff_token, token};
use xbhost_tests::sign_in::{
    STATE_COOKIE, cookie_pair, finish, page_state, set_cookie_named, sign_in_token, start,
};
use xbhost_tests::{DEMO_COURSE, plugin_wasm, xbhost_bin};

#[test]
fn serve_refuses_to_start_without_a_good_key() {
    let data = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &str)], args: &[&str]| {
        let mut cmd = std::process::Command::new(xbhost_bin());
        cmd.arg("--data").arg(data.path()).arg("serve");
        cmd.args(args)
            .env_remove("XBHOST_TOKEN_SECRET")
            .env_remove("XBHOST_TOKEN_SECRET_FILE");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&[], &[]);
    assert!(!ok);
    assert!(
        err.contains("refuses to start") && err.contains("XBHOST_TOKEN_SECRET"),
        "{err}"
    );
    assert!(err.contains("--token-secret-file"), "{err}");
    let (ok, err) = run(&[("XBHOST_TOKEN_SECRET", "too-short")], &[]);
    assert!(!ok);
    assert!(
        err.contains("9 bytes") && err.contains("at least 32"),
        "{err}"
    );
    let (ok, err) = run(
        &[("XBHOST_TOKEN_SECRET", xbhost_tests::served::TEST_SECRET)],
        &["--dev-login", "--listen", "0.0.0.0:0"],
    );
    assert!(!ok);
    assert!(
        err.contains("--dev-login") && err.contains("loopback"),
        "{err}"
    );
    let missing = data.path().join("no-such-key");
    let (ok, err) = run(&[], &["--token-secret-file", missing.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("no-such-key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_works_and_healthz_answers() {
    let data = tempfile::tempdir().unwrap();
    let key_file = data.path().join("key");
    std::fs::write(
        &key_file,
        format!("{}\n", xbhost_tests::served::TEST_SECRET),
    )
    .unwrap();
    let served = Served::start(data, &["--token-secret-file", key_file.to_str().unwrap()]);
    let (status, body) = send(client().get(format!("{}/healthz", served.url))).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    // The file's key is the one used: a token signed with it is accepted.
    let (status, body) = send(
        client()
            .get(format!(
                "{}/courses/course-v1:none+x+y/blocks/b",
                served.url
            ))
            .bearer_auth(learner_token("alice")),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    // The running server holds the store: the CLI says so instead of a raw lock error.
    let (ok, _, err) = xbhost_tests::xbhost(served.data.path(), &["plugin", "list"]);
    assert!(!ok);
    assert!(err.contains("in use by another xbhost process"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_expired_tampered_or_foreign_tokens_get_401() {
    let served = Served::demo(&[]);
    let unit = served.block_url("unit_1");
    let handler = format!("{}/handler/submit", served.block_url("check_sum"));
    let k = keys();
    let mut expired = Claims::new(
        "alice",
        "alice",
        BTreeMap::from([("*".into(), Role::Learner)]),
        60,
    );
    expired.exp -= 7200;
    let expired = k.issue(&expired).unwrap();
    let good = learner_token("alice");
    let admin = admin_token("root");
    // Same header and signature, payload swapped for an admin's: the signature no longer matches.
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        format!(
            "{}.{}.{}",
            parts[0],
            admin.split('.').nth(1).unwrap(),
            parts[2]
        )
    };
    let foreign = TokenKeys::from_secret(&[9u8; 40])
        .unwrap()
        .issue(&Claims::new(
            "alice",
            "alice",
            BTreeMap::from([("*".into(), Role::Admin)]),
            600,
        ))
        .unwrap();
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing", None, "no token"),
        ("expired", Some(format!("Bearer {expired}")), "expired"),
        ("tampered", Some(format!("Bearer {tampered}")), "signature"),
        ("wrong key", Some(format!("Bearer {foreign}")), "signature"),
        ("malformed", Some("Bearer abc.def".into()), "malformed"),
        ("not bearer", Some(format!("Basic {good}")), "Bearer"),
    ];
    let c = client();
    for (name, auth, says) in &cases {
        let requests = [
            c.get(&unit).header(header::ACCEPT, "application/json"),
            c.post(&handler).json(&json!({"answer": [1]})),
            c.post(format!("{}/admin/plugins", served.url))
                .body(vec![0u8; 8]),
            c.post(format!("{}/admin/courses", served.url)).body("{}"),
            c.get(format!(
                "{}/courses/{DEMO_COURSE}/users/alice/assignments",
                served.url
            )),
            c.get(format!(
                "{}/courses/{DEMO_COURSE}/users/alice/state/check_sum",
                served.url
            )),
        ];
        for request in requests {
            let request = match auth {
                Some(a) => request.header(header::AUTHORIZATION, a),
                None => request,
            };
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{name}");
            assert!(
                response.headers().contains_key(header::WWW_AUTHENTICATE),
                "{name}"
            );
            let body: Value = response.json().await.unwrap();
            assert!(error_of(&body).contains(says), "{name}: {body}");
        }
    }
    // Nothing was stored for anyone: no assignment event was sent.
    let events =
        std::fs::read_to_string(served.data.path().join("events.jsonl")).unwrap_or_default();
    assert!(events.is_empty(), "401s wrote events: {events}");
    // And the good token works.
    let (status, _) = send(
        c.get(&unit)
            .bearer_auth(&good)
            .header(header::ACCEPT, "application/json"),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learners_get_403_for_staff_views_others_state_and_admin() {
    let served = Served::demo(&[]);
    let c = client();
    let alice = learner_token("alice");
    let unit = served.block_url("unit_1");
    let url = |path: &str| format!("{}{path}", served.url);
    let forbidden: Vec<(reqwest::RequestBuilder, &str)> = vec![
        (
            c.get(format!("{unit}?view=staff&format=json"))
                .bearer_auth(&alice),
            "staff",
        ),
        (
            c.get(format!("{unit}?view=author&format=json"))
                .bearer_auth(&alice),
            "staff",
        ),
        (
            c.get(format!("{unit}?as_learner=bob&format=json"))
                .bearer_auth(&alice),
            "only staff",
        ),
        (
            c.get(format!("{unit}?as_group=0:1&format=json"))
                .bearer_auth(&alice),
            "only staff",
        ),
        (
            c.get(url(&format!(
                "/courses/{DEMO_COURSE}/users/bob/assignments"
            )))
            .bearer_auth(&alice),
            "user \"bob\"",
        ),
        (
            c.get(url(&format!(
                "/courses/{DEMO_COURSE}/users/bob/state/check_sum"
            )))
            .bearer_auth(&alice),
            "user \"bob\"",
        ),
        (
            c.post(url("/admin/plugins"))
                .bearer_auth(&alice)
                .body(plugin_wasm("html")),
            "not an admin",
        ),
        (
            c.post(url("/admin/courses")).bearer_auth(&alice).body("{}"),
            "not an admin",
        ),
        // Staff of the course are not admins.
        (
            c.post(url("/admin/plugins"))
                .bearer_auth(staff_token("sam"))
                .body(plugin_wasm("html")),
            "not an admin",
        ),
        (
            c.get(url(&format!("/courses/{DEMO_COURSE}/report?format=json")))
                .bearer_auth(&alice),
            "needs Staff",
        ),
        // A learner of another course has no role in this one.
        (
            c.get(format!("{unit}?format=json"))
                .bearer_auth(token("carol", &[("course-v1:other+x+1", Role::Staff)])),
            "no role in course",
        ),
    ];
    for (request, says) in forbidden {
        let (status, body) = send(request).await;
        assert_eq!(status, 403, "{body}");
        assert!(
            error_of(&body).contains(says),
            "expected {says:?} in {body}"
        );
    }
    // What learners may do, and staff may do for them.
    let (status, _) = send(c.get(format!("{unit}?format=json")).bearer_auth(&alice)).await;
    assert_eq!(status, 200);
    let (status, body) = send(
        c.get(url(&format!(
            "/courses/{DEMO_COURSE}/users/alice/assignments"
        )))
        .bearer_auth(&alice),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        c.get(url(&format!(
            "/courses/{DEMO_COURSE}/users/alice/assignments"
        )))
        .bearer_auth(staff_token("sam")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 2);
    let (status, body) = send(
        c.get(url(&format!("/courses/{DEMO_COURSE}/report?format=json")))
            .bearer_auth(staff_token("sam")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["partitions"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    let report = c
        .get(url(&format!("/courses/{DEMO_COURSE}/report")))
        .bearer_auth(staff_token("sam"))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 200);
    assert!(
        report
            .text()
            .await
            .unwrap()
            .contains("<h1>Experiment report</h1>")
    );
    let (status, body) = send(
        c.get(format!("{unit}?view=staff&format=json"))
            .bearer_auth(staff_token("sam")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["html"].as_str().unwrap().contains("data-group-name"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_posts_need_the_csrf_token_of_their_session() {
    let served = Served::demo(&["--dev-login"]);
    let c = client();
    let session = learner_token("dora");
    let other = learner_token("eve");
    let cookie = format!("xbhost_session={session}");
    let handler = format!("{}/handler/submit", served.block_url("check_sum"));
    let k = keys();
    let good = k.csrf_token(&format!("session\0{session}"));
    let stolen = k.csrf_token(&format!("session\0{other}"));
    // The page carries the token scripts send back.
    let page = c
        .get(served.block_url("unit_1"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("name=\"csrf-token\" content=\"{good}\"")),
        "{page}"
    );
    for (csrf, site, says) in [
        (None, None, "missing CSRF token"),
        (Some(stolen.as_str()), None, "wrong CSRF token"),
        (Some(good.as_str()), Some("cross-site"), "cross-site"),
    ] {
        let mut request = c
            .post(&handler)
            .header(header::COOKIE, &cookie)
            .json(&json!({"answer": [1]}));
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        let (status, body) = send(request).await;
        assert_eq!(status, 403, "{body}");
        assert!(error_of(&body).contains(says), "{says}: {body}");
    }
    let state_url = format!(
        "{}/courses/{DEMO_COURSE}/users/dora/state/check_sum",
        served.url
    );
    let (_, body) = send(c.get(&state_url).bearer_auth(&session)).await;
    assert_eq!(
        body["state"],
        Value::Null,
        "a refused post stored state: {body}"
    );
    let (status, body) = send(
        c.post(&handler)
            .header(header::COOKIE, &cookie)
            .header("x-csrf-token", &good)
            .json(&json!({"answer": [1]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = send(c.get(&state_url).bearer_auth(&session)).await;
    assert_eq!(body["state"]["attempts"], 1, "{body}");

    // The dev sign-in form is a post too: bound to the sign-in state of its page.
    let page = c
        .get(format!("{}/workbench", served.url))
        .send()
        .await
        .unwrap();
    let state_cookie = cookie_pair(&set_cookie_named(&page, STATE_COOKIE).unwrap());
    let state = page_state(&page.text().await.unwrap());
    let form = [("kind", "new"), ("state", "forged")];
    let response = c
        .post(format!("{}/dev-login", served.url))
        .header(header::COOKIE, &state_cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    let response = c
        .post(format!("{}/dev-login", served.url))
        .header(header::COOKIE, &state_cookie)
        .form(&[("kind", "new"), ("state", state.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let set = set_cookie_named(&response, "xbhost_session").unwrap();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(
        !set.contains("Secure"),
        "plain HTTP: not Secure unless asked: {set}"
    );
    // A browser still holding an expired session signs in again with its page's state.
    let stale = "xbhost_session=expired.or.stale";
    let page = c
        .get(format!("{}/workbench", served.url))
        .header(header::COOKIE, stale)
        .send()
        .await
        .unwrap();
    let state_cookie = cookie_pair(&set_cookie_named(&page, STATE_COOKIE).unwrap());
    let state = page_state(&page.text().await.unwrap());
    let response = c
        .post(format!("{}/dev-login", served.url))
        .header(header::COOKIE, format!("{stale}; {state_cookie}"))
        .form(&[
            ("kind", "named"),
            ("user", "fred"),
            ("role", "learner"),
            ("state", state.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    // The workbench forgets a refused session cookie and says why.
    let response = c
        .get(format!("{}/workbench", served.url))
        .header(header::COOKIE, "xbhost_session=expired.or.stale")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cleared: Vec<&str> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("xbhost_session=;") && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Your session was not accepted") && page.contains("malformed"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_cookies_when_asked() {
    let served = Served::demo(&["--dev-login", "--secure-cookies"]);
    let c = client();
    let page = c
        .get(format!("{}/workbench", served.url))
        .send()
        .await
        .unwrap();
    let state_cookie = set_cookie_named(&page, "__Host-xbhost_sign_in").unwrap();
    assert!(state_cookie.contains("Secure"), "{state_cookie}");
    let state = page_state(&page.text().await.unwrap());
    let response = c
        .post(format!("{}/dev-login", served.url))
        .header(header::COOKIE, cookie_pair(&state_cookie))
        .form(&[("kind", "new"), ("state", state.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let set = set_cookie_named(&response, "__Host-xbhost_session").unwrap();
    assert!(set.contains("Secure"), "{set}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lms_sessions_sign_out_and_the_headers_of_pages() {
    let served = Served::demo(&[]);
    let c = client();
    let base = &served.url;
    // The LMS launch: a bad token is 401 and sets nothing.
    let launch = start(&c, base).await;
    let response = finish(&c, base, &launch, "not-a-token", Some("/workbench")).await;
    assert_eq!(response.status(), 401);
    assert!(set_cookie_named(&response, "xbhost_session").is_none());
    // A good one becomes the session cookie; `next` is followed only to a local path
    // (more cases in server_sign_in.rs).
    let session = sign_in_token("lena", &[(DEMO_COURSE, Role::Learner)], &launch);
    let response = finish(
        &c,
        base,
        &launch,
        &session,
        Some("/workbench?course=x&unit=y"),
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()[header::LOCATION],
        "/workbench?course=x&unit=y"
    );
    let set = set_cookie_named(&response, "xbhost_session").unwrap();
    assert!(
        set.starts_with(&format!("xbhost_session={session};")),
        "{set}"
    );
    // The cookie authenticates the API like the header; an expired one is 401.
    let cookie = format!("xbhost_session={session}");
    let (status, _) = send(
        c.get(format!("{}?format=json", served.block_url("unit_1")))
            .header(header::COOKIE, &cookie),
    )
    .await;
    assert_eq!(status, 200);
    let mut old = Claims::new(
        "lena",
        "lena",
        BTreeMap::from([("*".into(), Role::Learner)]),
        60,
    );
    old.exp -= 3600;
    let expired = format!("xbhost_session={}", keys().issue(&old).unwrap());
    let (status, body) = send(
        c.get(format!("{}?format=json", served.block_url("unit_1")))
            .header(header::COOKIE, &expired),
    )
    .await;
    assert_eq!(status, 401);
    assert!(error_of(&body).contains("expired"), "{body}");
    // Signing out is a post like any other: it needs the session's CSRF token.
    let (status, _) = send(
        c.post(format!("{base}/sign-out"))
            .header(header::COOKIE, &cookie),
    )
    .await;
    assert_eq!(status, 403);
    let page = c
        .get(format!("{base}/workbench"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    // Pages: only our own script runs (course HTML is placed as is), nothing is cached,
    // nothing sniffed.
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    // Only the script carrying this response's nonce: not even another file of the host's
    // origin (a plugin's client file).
    let nonce = csp
        .split("script-src 'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no script nonce: {csp}"))
        .to_string();
    assert!(nonce.len() >= 16, "{csp}");
    assert!(
        !csp.split(';')
            .any(|d| d.trim().starts_with("script-src") && d.contains("unsafe")),
        "{csp}"
    );
    assert_eq!(page.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(page.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("src=\"/assets/xbhost.js\" nonce=\"{nonce}\"")),
        "{html}"
    );
    assert!(
        !html.contains(" onchange=") && !html.contains(" onclick="),
        "inline handlers would be blocked: {html}"
    );
    let token = html
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let response = c
        .post(format!("{base}/sign-out"))
        .header(header::COOKIE, &cookie)
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with("xbhost_session=;") && set.contains("Max-Age=0"),
        "{set}"
    );
    let json = c
        .get(format!("{}?format=json", served.block_url("unit_1")))
        .bearer_auth(learner_token("lena"))
        .send()
        .await
        .unwrap();
    assert_eq!(json.headers()[header::CACHE_CONTROL], "no-store");
    // Without --dev-login there is no dev sign-in.
    let response = c
        .post(format!("{base}/dev-login"))
        .form(&[("kind", "new")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
}
