//! Sign-in and sign-out across several hosts on one PostgreSQL database (#19): a token and
//! its sign-in state sign in once across all hosts, and a session signed out on one host
//! is refused by every other host within a second, and by a host started afterwards.

use std::time::{Duration, Instant};

use reqwest::header;
use xbhost::server::auth::Role;
use xbhost_tests::DEMO_COURSE;
use xbhost_tests::http::{client, send};
use xbhost_tests::pg::TestDatabase;
use xbhost_tests::served::{Served, learner_token};
use xbhost_tests::sign_in::{finish, page_csrf, sign_in_token, start};

const LEARNER: &[(&str, Role)] = &[(DEMO_COURSE, Role::Learner)];

/// The status of the demo unit fetched with this session cookie.
async fn status_with(served: &Served, cookie: &str) -> reqwest::StatusCode {
    send(
        client()
            .get(format!("{}?format=json", served.block_url("unit_1")))
            .header(header::COOKIE, cookie),
    )
    .await
    .0
}

async fn sign_out(served: &Served, cookie: &str) -> reqwest::StatusCode {
    let c = client();
    let page = c
        .get(format!("{}/workbench", served.url))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    c.post(format!("{}/sign-out", served.url))
        .header(header::COOKIE, cookie)
        .form(&[("csrf_token", page_csrf(&page).as_str())])
        .send()
        .await
        .unwrap()
        .status()
}

/// A token of `user` that is not the one [`learner_token`] makes, even within the same
/// second (a token is known by its `jti`, else its hash: same claims, same token).
fn another_token_of(user: &str) -> String {
    let roles = std::collections::BTreeMap::from([(DEMO_COURSE.to_string(), Role::Learner)]);
    let mut claims = xbhost::server::auth::Claims::new(user, user, roles, 3600);
    claims.jti = Some(format!("another-session-of-{user}"));
    xbhost_tests::served::keys().issue(&claims).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_signed_out_on_one_host_is_refused_by_every_host() {
    let db = TestDatabase::fresh();
    db.load_demo();
    let a = Served::on_database(&db.url, &[]);
    let b = Served::on_database(&db.url, &[]);
    let cookie = format!("xbhost_session={}", learner_token("kim"));
    assert_eq!(status_with(&a, &cookie).await, 200);
    assert_eq!(status_with(&b, &cookie).await, 200);

    assert_eq!(sign_out(&a, &cookie).await, 303);
    assert_eq!(status_with(&a, &cookie).await, 401);
    // Host B hears of it through the database's change notice.
    let signed_out = Instant::now();
    let heard = loop {
        if status_with(&b, &cookie).await == 401 {
            break signed_out.elapsed();
        }
        assert!(
            signed_out.elapsed() < Duration::from_secs(5),
            "host B still takes the signed-out session after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!(
        "host B refused the signed-out session {} ms after the sign-out",
        heard.as_millis()
    );
    assert!(heard < Duration::from_secs(1), "{heard:?}");
    // A host started afterwards reads the revocations the database holds.
    let c = Served::on_database(&db.url, &[]);
    assert_eq!(status_with(&c, &cookie).await, 401);
    let (status, body) = send(
        client()
            .get(format!("{}?format=json", c.block_url("unit_1")))
            .bearer_auth(another_token_of("kim").as_str()),
    )
    .await;
    // Another token of the same learner is another session: untouched.
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_and_its_state_sign_in_once_across_hosts() {
    let db = TestDatabase::fresh();
    db.load_demo();
    let a = Served::on_database(&db.url, &[]);
    let b = Served::on_database(&db.url, &[]);
    let c = client();
    // A sign-in started and finished on host A...
    let launch = start(&c, &a.url).await;
    let token = sign_in_token("lena", LEARNER, &launch);
    let first = finish(&c, &a.url, &launch, &token, None).await;
    assert_eq!(first.status(), 303, "the sign-in on host A");
    // ...is replayed, whole (token, state and state cookie), on host B: refused.
    let replay = finish(&c, &b.url, &launch, &token, None).await;
    let status = replay.status();
    let body = replay.text().await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("already been used"), "{body}");
    // And on A again, of course.
    let again = finish(&c, &a.url, &launch, &token, None).await;
    assert_eq!(again.status(), 401);
}
