//! `xbhost serve` over real HTTP: a separate server process on a real store with the real
//! built plugins. Authentication (401), roles and CSRF (403), unknown ids (404), bad ids
//! (400), body limits (413), escaping, uploads, metrics, and 200 concurrent first visits.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};
use xbhost::server::auth::{Claims, Role, TokenKeys};
use xbhost_tests::served::{
    Served, admin_token, keys, learner_token, staff_token, token, token_named,
};
use xbhost_tests::{DEMO_COURSE, plugin_wasm, xbhost_bin};

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Status and body (JSON) of a request.
async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

fn error_of(body: &Value) -> String {
    body["error"].as_str().unwrap_or_default().to_string()
}

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

    // The dev sign-in form is a post too: bound to the nonce cookie of its page.
    let form = [("kind", "new"), ("csrf_token", "forged")];
    let response = c
        .post(format!("{}/dev-login", served.url))
        .header(header::COOKIE, "xbhost_csrf=abc")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    let real = k.csrf_token("nonce\0abc");
    let response = c
        .post(format!("{}/dev-login", served.url))
        .header(header::COOKIE, "xbhost_csrf=abc")
        .form(&[("kind", "new"), ("csrf_token", real.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let set = response
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        set.starts_with("xbhost_session=") && set.contains("HttpOnly"),
        "{set}"
    );
    assert!(
        !set.contains("Secure"),
        "plain HTTP: not Secure unless asked: {set}"
    );
    // A browser still holding an expired session signs in again with the form's token.
    let response = c
        .post(format!("{}/dev-login", served.url))
        .header(
            header::COOKIE,
            "xbhost_session=expired.or.stale; xbhost_csrf=abc",
        )
        .form(&[
            ("kind", "named"),
            ("user", "fred"),
            ("role", "learner"),
            ("csrf_token", real.as_str()),
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
async fn unknown_ids_are_404_and_unusable_ids_400_naming_them() {
    let served = Served::demo(&[]);
    let c = client();
    let alice = learner_token("alice");
    let any = token("alice", &[("*", Role::Learner)]);
    let base = &served.url;
    let not_found: Vec<(String, &str, bool)> = vec![
        (
            format!("{base}/courses/course-v1:nobody+none+1/blocks/unit_1"),
            "course-v1:nobody+none+1",
            false,
        ),
        (
            format!("{base}/courses/{DEMO_COURSE}/blocks/no_such_block"),
            "no_such_block",
            false,
        ),
        (
            format!("{base}/courses/{DEMO_COURSE}/blocks/no_such_block/handler/submit"),
            "no_such_block",
            true,
        ),
        (
            format!("{base}/courses/{DEMO_COURSE}/users/alice/state/no_such_block"),
            "no_such_block",
            false,
        ),
        (
            format!("{base}/courses/course-v1:nobody+none+1/users/alice/assignments"),
            "course-v1:nobody+none+1",
            false,
        ),
        (format!("{base}/no/such/route"), "/no/such/route", false),
    ];
    for (url, id, post) in not_found {
        let request = if post {
            c.post(&url).json(&json!({}))
        } else {
            c.get(&url)
        };
        let (status, body) = send(
            request
                .bearer_auth(&any)
                .header(header::ACCEPT, "application/json"),
        )
        .await;
        assert_eq!(status, 404, "{url}: {body}");
        assert!(error_of(&body).contains(id), "{url}: {body}");
    }
    // Path separators, control characters and over-long ids: refused, named.
    let long = "x".repeat(300);
    for (segment, says) in [
        ("a%2Fb", "path separator"),
        ("a%5Cb", "path separator"),
        ("a%0Ab", "control character"),
        ("a%00b", "control character"),
        (long.as_str(), "over the limit"),
    ] {
        for url in [
            format!("{base}/courses/{DEMO_COURSE}/blocks/{segment}?format=json"),
            format!("{base}/courses/{segment}/blocks/unit_1?format=json"),
            format!("{base}/courses/{DEMO_COURSE}/users/{segment}/assignments"),
        ] {
            let (status, body) = send(c.get(&url).bearer_auth(&alice)).await;
            assert_eq!(status, 400, "{url}: {body}");
            assert!(error_of(&body).contains(says), "{url}: {body}");
        }
    }
    let (status, body) = send(
        c.post(format!(
            "{base}/courses/{DEMO_COURSE}/blocks/check_sum/handler/sub%0Amit"
        ))
        .bearer_auth(&alice)
        .json(&json!({})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).contains("handler name"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_configured_size_get_413() {
    let served = Served::demo(&["--max-body-bytes", "1024", "--max-upload-bytes", "4096"]);
    let c = client();
    let handler = format!("{}/handler/submit", served.block_url("check_sum"));
    let big = json!({"answer": [1], "padding": "x".repeat(2000)});
    let (status, body) = send(
        c.post(&handler)
            .bearer_auth(learner_token("alice"))
            .json(&big),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        error_of(&body).contains("1024 bytes") && error_of(&body).contains("--max-body-bytes"),
        "{body}"
    );
    // A body without a length (streamed) is cut off at the limit too.
    let path = format!("/courses/{DEMO_COURSE}/blocks/check_sum/handler/submit");
    let (base, alice) = (served.url.clone(), learner_token("alice"));
    let status_line =
        tokio::task::spawn_blocking(move || post_chunked(&base, &path, &alice, 20, 100))
            .await
            .unwrap();
    assert!(status_line.contains(" 413 "), "{status_line}");
    let (status, body) = send(
        c.post(format!("{}/admin/plugins", served.url))
            .bearer_auth(admin_token("root"))
            .body(plugin_wasm("html")),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        error_of(&body).contains("4096 bytes") && error_of(&body).contains("--max-upload-bytes"),
        "{body}"
    );
    // Under the limit is fine.
    let (status, body) = send(
        c.post(&handler)
            .bearer_auth(learner_token("alice"))
            .json(&json!({"answer": [1]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Posts a chunked body (no Content-Length) over a plain socket; returns the status line.
fn post_chunked(base: &str, path: &str, token: &str, chunks: usize, chunk: usize) -> String {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for _ in 0..chunks {
        request.push_str(&format!("{chunk:x}\r\n{}\r\n", " ".repeat(chunk)));
    }
    request.push_str("0\r\n\r\n");
    // The server may answer (and close) before it has read everything.
    let _ = stream.write_all(request.as_bytes());
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_markup_escapes_every_user_supplied_string() {
    let served = Served::demo(&[]);
    let c = client();
    let hostile = "<img src=x onerror=alert(1)>";
    let session = token_named("mallory", hostile, &[("*", Role::Staff)]);
    let page = c
        .get(format!("{}/workbench", served.url))
        .header(header::COOKIE, format!("xbhost_session={session}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    assert!(
        !page.contains(hostile),
        "the username reached the page unescaped"
    );
    // An id in an error page is escaped too.
    let url = format!(
        "{}/courses/{DEMO_COURSE}/blocks/%3Cscript%3Ealert(1)%3C%2Fscript",
        served.url
    );
    let page = c.get(&url).bearer_auth(&session).send().await.unwrap();
    assert_eq!(page.status(), 400);
    let page = page.text().await.unwrap();
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script"), "{page}");
    let url = format!("{}/courses/{DEMO_COURSE}/blocks/%3Cb%3Enope", served.url);
    let page = c.get(&url).bearer_auth(&session).send().await.unwrap();
    assert_eq!(page.status(), 404);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("&lt;b&gt;nope") && !page.contains("<b>nope"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_first_requests_leave_one_stored_group() {
    let served = Served::demo(&[]);
    let c = client();
    let learner = "newcomer-7f3a";
    let session = learner_token(learner);
    let url = format!("{}?format=json", served.block_url("unit_1"));
    let requests = (0..200).map(|_| {
        let (c, url, session) = (c.clone(), url.clone(), session.clone());
        tokio::spawn(async move { send(c.get(&url).bearer_auth(&session)).await })
    });
    let mut seen = BTreeSet::new();
    for request in requests.collect::<Vec<_>>() {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body["failures"].as_array().unwrap().is_empty(), "{body}");
        let groups: BTreeMap<String, u64> =
            serde_json::from_value(body["assignments"].clone()).unwrap();
        assert_eq!(groups.len(), 2, "both experiments of the unit: {body}");
        // The page shows that group: exactly its condition of each split test.
        let html = body["html"].as_str().unwrap();
        let text_shown = html.contains("data-usage-id=\"explanation_a_text\"");
        let video_shown = html.contains("data-usage-id=\"explanation_a_video\"");
        assert!(text_shown != video_shown, "exactly one condition: {html}");
        assert_eq!(video_shown, groups["0"] == 1, "{groups:?}: {html}");
        seen.insert(groups);
    }
    assert_eq!(seen.len(), 1, "responses disagree: {seen:?}");
    let shown = seen.into_iter().next().unwrap();
    // The stored group is the one every response showed, and was assigned once.
    let (status, body) = send(
        c.get(format!(
            "{}/courses/{DEMO_COURSE}/users/{learner}/assignments",
            served.url
        ))
        .bearer_auth(&session),
    )
    .await;
    assert_eq!(status, 200);
    for view in body.as_array().unwrap() {
        let partition = view["partition_id"].to_string();
        assert_eq!(view["stored"], true, "{view}");
        assert_eq!(
            view["group"]["id"].as_u64(),
            Some(shown[&partition]),
            "{view}"
        );
    }
    let data = served.stop();
    let events = std::fs::read_to_string(data.path().join("events.jsonl")).unwrap();
    let assigned: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["name"] == xbhost::events::ASSIGNED_EVENT && e["user_id"] == learner)
        .collect();
    assert_eq!(
        assigned.len(),
        2,
        "one assignment event per partition: {assigned:?}"
    );
    // And the store, reopened after the server stopped, agrees.
    let host = xbhost::Host::open(data.path(), xbhost::HostConfig::default()).unwrap();
    for (partition, group) in shown {
        let view = host
            .assignment(DEMO_COURSE, partition.parse().unwrap(), learner)
            .unwrap();
        assert!(view.stored);
        assert_eq!(view.group.unwrap().id, group);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_calls_store_state_and_bad_payloads_are_named() {
    let served = Served::demo(&[]);
    let c = client();
    let alice = learner_token("alice");
    let handler = format!("{}/handler/submit", served.block_url("check_sum"));
    let (status, body) = send(c.post(&handler).bearer_auth(&alice).body("not json")).await;
    assert_eq!(status, 400);
    assert!(
        error_of(&body).contains("not JSON") && error_of(&body).contains("submit"),
        "{body}"
    );
    let (status, body) = send(
        c.post(&handler)
            .bearer_auth(&alice)
            .json(&json!({"answer": [7]})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        error_of(&body).contains("choice 7 does not exist"),
        "{body}"
    );
    let (status, body) = send(
        c.post(&handler)
            .bearer_auth(&alice)
            .json(&json!({"answer": [0]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["correct"], false);
    let (status, body) = send(
        c.post(&handler)
            .bearer_auth(&alice)
            .json(&json!({"answer": 1})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["correct"], true);
    assert_eq!(body["attempts"], 2);
    let (_, body) = send(
        c.get(format!(
            "{}/courses/{DEMO_COURSE}/users/alice/state/check_sum",
            served.url
        ))
        .bearer_auth(&alice),
    )
    .await;
    assert_eq!(body["state"]["answer"], json!([1]), "{body}");
    let (_, page) = send(
        c.get(format!("{}?format=json", served.block_url("unit_1")))
            .bearer_auth(&alice),
    )
    .await;
    assert!(
        page["html"]
            .as_str()
            .unwrap()
            .contains("class=\"result correct\""),
        "{page}"
    );
    let (status, body) = send(
        c.post(format!(
            "{}/handler/no_such_handler",
            served.block_url("check_sum")
        ))
        .bearer_auth(&alice)
        .json(&json!({})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("no_such_handler"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_upload_plugins_and_courses_and_metrics_count_it_all() {
    let served = Served::demo(&[]);
    let c = client();
    let admin = admin_token("root");
    let base = &served.url;
    // A broken plugin is refused, naming why; nothing changes.
    let (status, body) = send(
        c.post(format!("{base}/admin/plugins"))
            .bearer_auth(&admin)
            .body(b"\0asm-not-really".to_vec()),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("not installed"), "{body}");
    let (status, body) = send(
        c.post(format!("{base}/admin/plugins"))
            .bearer_auth(&admin)
            .body(plugin_wasm("panicker")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "panicker");
    // A course (JSON) whose unit has a panicking block beside an experiment.
    let key = "course-v1:xbhost+uploaded+1";
    let course = json!({
        "course_key": key,
        "user_partitions": [{"id": 5, "name": "Upload test", "scheme": "random",
            "groups": [{"id": 0, "name": "A"}, {"id": 1, "name": "B"}]}],
        "blocks": [
            {"usage_id": "unit", "type": "vertical", "children": ["split", "bad"]},
            {"usage_id": "split", "type": "split_test",
             "fields": {"user_partition_id": 5, "group_id_to_child": {"0": "a", "1": "b"}},
             "children": ["a", "b"]},
            {"usage_id": "a", "type": "html", "fields": {"data": "<p>A</p>"}},
            {"usage_id": "b", "type": "html", "fields": {"data": "<p>B</p>"}},
            {"usage_id": "bad", "type": "panicker"}
        ]
    });
    let course_staff = token("root2", &[(key, Role::Staff)]);
    let (status, body) = send(
        c.post(format!("{base}/admin/courses"))
            .bearer_auth(&course_staff)
            .json(&course),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = send(
        c.post(format!("{base}/admin/courses"))
            .bearer_auth(token("cadmin", &[(key, Role::Admin)]))
            .json(&json!({"course_key": key, "blocks": 3})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = send(
        c.post(format!("{base}/admin/courses"))
            .bearer_auth(token("cadmin", &[(key, Role::Admin)]))
            .json(&course),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["course_key"], key);
    let learner = token("lena", &[(key, Role::Learner)]);
    let (status, page) = send(
        c.get(format!("{base}/courses/{key}/blocks/unit?format=json"))
            .bearer_auth(&learner),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["failures"][0]["block_type"], "panicker", "{page}");
    let (status, _) = send(
        c.get(format!("{base}/courses/{key}/blocks/nope?format=json"))
            .bearer_auth(&learner),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(c.get(format!("{base}/courses/{key}/blocks/unit?format=json"))).await;
    assert_eq!(status, 401);

    let metrics = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let has = |needle: &str| {
        assert!(
            metrics.contains(needle),
            "no {needle:?} in the metrics:\n{metrics}"
        );
    };
    has(
        "xbhost_http_requests_total{method=\"GET\",route=\"/courses/{course_key}/blocks/{usage_id}\",status=\"200\"} 1",
    );
    has(
        "xbhost_http_requests_total{method=\"GET\",route=\"/courses/{course_key}/blocks/{usage_id}\",status=\"404\"} 1",
    );
    has(
        "xbhost_http_requests_total{method=\"GET\",route=\"/courses/{course_key}/blocks/{usage_id}\",status=\"401\"} 1",
    );
    has("xbhost_http_requests_total{method=\"POST\",route=\"/admin/plugins\",status=\"422\"} 1");
    has("xbhost_render_duration_seconds_count{view=\"student\"} 1");
    has("xbhost_block_failures_total{plugin=\"panicker\",kind=\"panic\"} 1");
    has(&format!(
        "xbhost_assignments_total{{course=\"{key}\",partition=\"5\"}} 1"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_render_has_the_fields_and_groups_of_render_json() {
    // The CLI on one copy of the demo data, the server on another: the same learner gets
    // the same (deterministic) groups and page, under the same fields.
    let cli_data = tempfile::tempdir().unwrap();
    xbhost_tests::copy_dir(xbhost_tests::served::demo_template(), cli_data.path());
    let line = xbhost_tests::xbhost_ok(
        cli_data.path(),
        &[
            "render",
            "--course",
            DEMO_COURSE,
            "--block",
            "unit_1",
            "--user",
            "zoe",
            "--json",
        ],
    );
    let cli: Value = serde_json::from_str(line.trim()).unwrap();
    let served = Served::demo(&[]);
    let (status, http) = send(
        client()
            .get(served.block_url("unit_1"))
            .header(header::ACCEPT, "application/json")
            .bearer_auth(learner_token("zoe")),
    )
    .await;
    assert_eq!(status, 200, "{http}");
    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(keys(&http), keys(&cli));
    for field in [
        "user",
        "view",
        "html",
        "hidden",
        "visible_blocks",
        "assignments",
        "experiments",
    ] {
        assert_eq!(http[field], cli[field], "{field}");
    }
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
    let nonce = page
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        nonce.starts_with("xbhost_csrf=") && nonce.contains("Secure"),
        "{nonce}"
    );
    let value = nonce
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("xbhost_csrf=")
        .to_string();
    let csrf = keys().csrf_token(&format!("nonce\0{value}"));
    let response = c
        .post(format!("{}/dev-login", served.url))
        .header(header::COOKIE, format!("xbhost_csrf={value}"))
        .form(&[("kind", "new"), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let set = response
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        set.starts_with("xbhost_session=") && set.contains("Secure"),
        "{set}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looping_blocks_are_timeouts_in_the_metrics_and_a_full_server_answers_503() {
    // Short block budget so the looper is cut off quickly; one render slot, and a short
    // wait for it, so requests behind a looping page are turned away.
    let served = Served::demo_with_env(
        &[
            ("XBHOST_BLOCK_TIME_MS", "300"),
            ("XBHOST_REQUEST_DEADLINE_MS", "5000"),
        ],
        &["--max-concurrent-renders", "1", "--queue-timeout-ms", "50"],
    );
    let c = client();
    let admin = admin_token("root");
    let (status, body) = send(
        c.post(format!("{}/admin/plugins", served.url))
            .bearer_auth(&admin)
            .body(plugin_wasm("looper")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let key = "course-v1:xbhost+loops+1";
    let course = json!({"course_key": key, "blocks": [
        {"usage_id": "unit", "type": "vertical", "children": ["spin", "ok"]},
        {"usage_id": "spin", "type": "looper"},
        {"usage_id": "ok", "type": "html", "fields": {"data": "<p>still here</p>"}}
    ]});
    let (status, body) = send(
        c.post(format!("{}/admin/courses", served.url))
            .bearer_auth(&admin)
            .json(&course),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let url = format!("{}/courses/{key}/blocks/unit?format=json", served.url);
    let requests: Vec<_> = (0..6)
        .map(|i| {
            let (c, url) = (c.clone(), url.clone());
            let token = token(&format!("looper-{i}"), &[(key, Role::Learner)]);
            tokio::spawn(async move {
                let response = c.get(&url).bearer_auth(token).send().await.unwrap();
                let retry = response.headers().get(header::RETRY_AFTER).is_some();
                let status = response.status();
                (status, retry, response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let (mut served_pages, mut busy) = (0, 0);
    for request in requests {
        let (status, retry, body) = request.await.unwrap();
        match status.as_u16() {
            200 => {
                served_pages += 1;
                assert_eq!(body["failures"][0]["block_type"], "looper", "{body}");
                assert_eq!(body["failures"][0]["kind"], "timeout", "{body}");
                assert!(
                    body["html"].as_str().unwrap().contains("still here"),
                    "{body}"
                );
            }
            503 => {
                busy += 1;
                assert!(retry, "503 without Retry-After");
                assert!(error_of(&body).contains("busy"), "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        served_pages >= 1 && busy >= 1,
        "{served_pages} served, {busy} busy"
    );
    let metrics = c
        .get(format!("{}/metrics", served.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let timeouts = metrics
        .lines()
        .find(|l| l.starts_with("xbhost_block_failures_total{plugin=\"looper\",kind=\"timeout\"}"))
        .unwrap_or_else(|| panic!("no looper timeouts in the metrics:\n{metrics}"));
    assert!(
        timeouts.ends_with(&format!(" {served_pages}")),
        "{timeouts}"
    );
    assert!(
        metrics.contains(&format!("status=\"503\"}} {busy}")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lms_sessions_sign_out_and_the_headers_of_pages() {
    let served = Served::demo(&[]);
    let c = client();
    let base = &served.url;
    // The LMS launch: a bad token is 401 and sets nothing.
    let response = c
        .post(format!("{base}/session"))
        .form(&[("token", "not-a-token"), ("next", "/workbench")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    // A good one becomes the session cookie; `next` is followed only to a local path.
    let session = learner_token("lena");
    for (next, location) in [
        ("/workbench?course=x&unit=y", "/workbench?course=x&unit=y"),
        ("//evil.example/", "/workbench"),
        ("/\t/evil.example", "/workbench"),
        ("/\\evil.example", "/workbench"),
        ("https://evil.example/", "/workbench"),
    ] {
        let response = c
            .post(format!("{base}/session"))
            .form(&[("token", session.as_str()), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{next:?}");
        assert_eq!(response.headers()[header::LOCATION], location, "{next:?}");
        let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
        assert!(
            set.starts_with(&format!("xbhost_session={session};")),
            "{set}"
        );
    }
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
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(
        !csp.split(';')
            .any(|d| d.trim().starts_with("script-src") && d.contains("unsafe")),
        "{csp}"
    );
    assert_eq!(page.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(page.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let html = page.text().await.unwrap();
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
        .bearer_auth(&session)
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

/// The Open edX test course export as a `.tar.gz`, in memory.
fn test_course_archive() -> Vec<u8> {
    let dir = xbhost_tests::workspace_root()
        .parent()
        .unwrap()
        .join("shared/olx/openedx-test-course");
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    tar.append_dir_all("course", &dir)
        .unwrap_or_else(|e| panic!("packing {}: {e}", dir.display()));
    tar.into_inner().unwrap().finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_edx_export_uploads_and_renders_and_staff_view_as_groups() {
    let served = Served::demo(&[]);
    let c = client();
    let admin = admin_token("root");
    let upload = format!("{}/admin/courses", served.url);
    // Not a course at all, and not a format we read: named, nothing stored.
    let (status, body) = send(
        c.post(&upload)
            .bearer_auth(&admin)
            .header(header::CONTENT_TYPE, "application/gzip")
            .body(b"\x1f\x8bnot really".to_vec()),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        error_of(&body).contains("the uploaded export is invalid"),
        "{body}"
    );
    let (status, body) = send(
        c.post(&upload)
            .bearer_auth(&admin)
            .header(header::CONTENT_TYPE, "text/plain")
            .body("hello"),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert!(error_of(&body).contains("application/gzip"), "{body}");
    // The real export.
    let (status, body) = send(
        c.post(&upload)
            .bearer_auth(&admin)
            .header(header::CONTENT_TYPE, "application/gzip")
            .body(test_course_archive()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let key = body["course_key"].as_str().unwrap().to_string();
    assert_eq!(key, "course-v1:TestX+Course+1");
    assert!(
        std::fs::read_dir(served.data.path().join("uploads"))
            .unwrap()
            .next()
            .is_none(),
        "the staged archive is removed"
    );
    let split_unit = "19bb0e826d014c15b3b4178ab9725c22";
    let learner = token("olga", &[(&key, Role::Learner)]);
    let (status, page) = send(
        c.get(format!(
            "{}/courses/{key}/blocks/{split_unit}?format=json",
            served.url
        ))
        .bearer_auth(&learner),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page["failures"].as_array().unwrap().is_empty(), "{page}");
    assert_eq!(page["assignments"].as_object().unwrap().len(), 1, "{page}");

    // Staff choose the groups to view as; nothing is stored for them.
    let staff = staff_token("sam");
    let unit = served.block_url("unit_1");
    let (status, body) = send(
        c.get(format!("{unit}?format=json&as_group=0:1,1:2"))
            .bearer_auth(&staff),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["assignments"], json!({"0": 1, "1": 2}), "{body}");
    assert!(
        body["experiments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "viewed_as"),
        "{body}"
    );
    let html = body["html"].as_str().unwrap();
    assert!(
        html.contains("explanation_a_video") && html.contains("hints_examples"),
        "{html}"
    );
    let (status, body) = send(
        c.get(format!("{unit}?format=json&as_group=0-1"))
            .bearer_auth(&staff),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).contains("PARTITION:GROUP"), "{body}");
    let (status, body) = send(
        c.get(format!("{unit}?format=json&as_group=0:7"))
            .bearer_auth(&staff),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        error_of(&body).contains("no group \"7 (user partition 0)\""),
        "{body}"
    );
    let (_, stored) = send(
        c.get(format!(
            "{}/courses/{DEMO_COURSE}/users/sam/assignments",
            served.url
        ))
        .bearer_auth(&staff),
    )
    .await;
    assert!(
        stored
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["stored"] == false),
        "{stored}"
    );
}
