//! `xbhost serve` over real HTTP, requests it refuses or must not trust: unknown ids (404)
//! and unusable ids (400) named in the answer, bodies over the limit (413, with and without
//! a length), and user-supplied strings escaped in the host's markup.

use reqwest::header;
use serde_json::json;
use xbhost::server::auth::Role;
use xbhost_tests::http::{client, error_of, post_chunked, send};
use xbhost_tests::served::{Served, admin_token, learner_token, token, token_named};
use xbhost_tests::{DEMO_COURSE, plugin_wasm};

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
