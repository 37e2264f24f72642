//! Sign-in CSRF and token hygiene, against `xbhost serve` over real HTTP: a sign-in is
//! bound to the state the host set in that browser (the two-step launch, and the dev
//! sign-in's page), a token signs in once, `iss`, `aud`, `nbf` and the maximum lifetime
//! are checked on every token, `--secure-cookies` names the session cookie
//! `__Host-xbhost_session`, signing out revokes the session on this host, and the
//! records of used tokens and revoked sessions are bounded.

use std::collections::BTreeMap;

use reqwest::header;
use serde_json::Value;
use xbhost::server::auth::{Audience, Claims, Role};
use xbhost_tests::http::{client, error_of, send};
use xbhost_tests::served::{Served, keys, learner_token};
use xbhost_tests::sign_in::{
    Launch, STATE_COOKIE, cookie_pair, finish, page_csrf, page_state, set_cookie_named,
    set_cookies, sign_in, sign_in_claims, sign_in_token, start, start_as,
};
use xbhost_tests::{DEMO_COURSE, xbhost_bin};

const LEARNER: &[(&str, Role)] = &[(DEMO_COURSE, Role::Learner)];

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The page (or JSON) of a refused request, and that it set no session.
async fn refused(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    assert!(
        set_cookie_named(&response, "xbhost_session").is_none()
            && set_cookie_named(&response, "__Host-xbhost_session").is_none(),
        "a refused sign-in set a session: {:?}",
        set_cookies(&response)
    );
    (status, response.text().await.unwrap())
}

/// The render of unit_1 as JSON for a request with this cookie.
async fn with_cookie(served: &Served, cookie: &str) -> (reqwest::StatusCode, Value) {
    send(
        client()
            .get(format!("{}?format=json", served.block_url("unit_1")))
            .header(header::COOKIE, cookie),
    )
    .await
}

/// Login CSRF: an attacker starts a sign-in in their own browser and gets the LMS's
/// token for it; a page of theirs then makes the victim's browser post that token. The
/// victim's browser lacks the attacker's state cookie, so nobody is signed in, and the
/// token still works where it was meant to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_post_from_another_browser_signs_nobody_in() {
    let served = Served::demo(&[]);
    let c = client();
    let base = &served.url;
    // A hostile page's auto-submitted form with a valid token of the attacker's: no
    // sign-in state of this browser, no session.
    let theirs = learner_token("mallory");
    let response = c
        .post(format!("{base}/session"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("token", theirs.as_str()), ("next", "/workbench")])
        .send()
        .await
        .unwrap();
    let (status, page) = refused(response).await;
    assert_eq!(status, 403, "{page}");

    let attackers = start(&c, base).await;
    let token = sign_in_token("mallory", LEARNER, &attackers);

    // The victim's browser, with no state of ours (a cross-site auto-submitted form).
    let response = c
        .post(format!("{base}/session"))
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("token", token.as_str()),
            ("state", attackers.state.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let (status, page) = refused(response).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("no sign-in state in this browser"), "{page}");

    // The victim's browser in a sign-in of its own: the posted state is not its state.
    let victims = start(&c, base).await;
    let planted = Launch {
        cookie: victims.cookie.clone(),
        ..attackers.clone()
    };
    let (status, page) = refused(finish(&c, base, &planted, &token, None).await).await;
    assert_eq!(status, 403, "{page}");
    assert!(
        page.contains("not the one this host gave this browser"),
        "{page}"
    );

    // The victim's own state with the attacker's token: the nonce is another sign-in's.
    let (status, page) = refused(finish(&c, base, &victims, &token, None).await).await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("nonce is not the one"), "{page}");

    // No state at all, and a token without a nonce.
    let response = c
        .post(format!("{base}/session"))
        .header(header::COOKIE, &victims.cookie)
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    let (status, page) = refused(response).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("has no state"), "{page}");
    let bare = keys()
        .issue(&sign_in_claims("mallory", LEARNER, None))
        .unwrap();
    let (status, page) = refused(finish(&c, base, &victims, &bare, None).await).await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("must carry the nonce"), "{page}");
    // A state this host did not make (its MAC does not match).
    let forged = Launch {
        state: format!("{}.{}.00", now(), "ab".repeat(16)),
        nonce: String::new(),
        cookie: format!("{STATE_COOKIE}={}.{}.00", now(), "ab".repeat(16)),
    };
    let (status, page) = refused(finish(&c, base, &forged, &token, None).await).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("not made by this host"), "{page}");

    // Nothing was used up: in the attacker's own browser the token signs in.
    let response = finish(&c, base, &attackers, &token, None).await;
    assert_eq!(response.status(), 303);
}

/// The two-step launch: what step 1 answers, the session after step 2, a replayed post
/// refused, a state used once, an expired state refused, `next` kept local.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_signs_in_once() {
    let served = Served::demo(&[]);
    let c = client();
    let base = &served.url;
    let response = c.get(format!("{base}/session/login")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let set = set_cookie_named(&response, STATE_COOKIE).unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(set.contains(attribute), "{attribute}: {set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["post_to"], "/session", "{body}");
    assert_eq!(body["expires_in"], 600, "{body}");
    let launch = Launch {
        state: body["state"].as_str().unwrap().into(),
        nonce: body["nonce"].as_str().unwrap().into(),
        cookie: cookie_pair(&set),
    };
    assert!(
        launch.cookie.ends_with(&launch.state),
        "{launch:?}: the cookie holds the state"
    );
    // A browser asking for HTML gets a small page with both.
    let page = c
        .get(format!("{base}/session/login"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"nonce\"") && page.contains("id=\"state\""),
        "{page}"
    );

    let token = sign_in_token("lena", LEARNER, &launch);
    let response = finish(
        &c,
        base,
        &launch,
        &token,
        Some("/workbench?course=x&unit=y"),
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()[header::LOCATION],
        "/workbench?course=x&unit=y"
    );
    let session = set_cookie_named(&response, "xbhost_session").unwrap();
    assert!(
        session.starts_with(&format!("xbhost_session={token};")) && session.contains("HttpOnly"),
        "{session}"
    );
    let cleared = set_cookie_named(&response, STATE_COOKIE).unwrap();
    assert!(
        cleared.contains("Max-Age=0"),
        "the state is forgotten: {cleared}"
    );
    let (status, body) = with_cookie(&served, &cookie_pair(&session)).await;
    assert_eq!(status, 200, "{body}");

    // The same post again (a replay, from a copy of the form or the network): refused.
    let (status, page) = refused(finish(&c, base, &launch, &token, None).await).await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("already been used to sign in"), "{page}");
    // The same state with another token for it: a state signs in once.
    let mut other = sign_in_claims("lena", LEARNER, Some(&launch.nonce));
    other.jti = Some("another-token".into());
    let other = keys().issue(&other).unwrap();
    let (status, page) = refused(finish(&c, base, &launch, &other, None).await).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("state has already been used"), "{page}");
    // A token with a jti is one token, whatever its bytes: re-signed, still used.
    let launch2 = start(&c, base).await;
    let mut first = sign_in_claims("lena", LEARNER, Some(&launch2.nonce));
    first.jti = Some("jti-1".into());
    let response = finish(&c, base, &launch2, &keys().issue(&first).unwrap(), None).await;
    assert_eq!(response.status(), 303);
    let launch3 = start(&c, base).await;
    let mut again = first.clone();
    again.nonce = Some(launch3.nonce.clone());
    let (status, page) =
        refused(finish(&c, base, &launch3, &keys().issue(&again).unwrap(), None).await).await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("already been used"), "{page}");

    // `next` is followed only to a local path.
    for (next, location) in [
        ("//evil.example/", "/workbench"),
        ("/\t/evil.example", "/workbench"),
        ("/\\evil.example", "/workbench"),
        ("https://evil.example/", "/workbench"),
    ] {
        let launch = start(&c, base).await;
        let token = sign_in_token("lena", LEARNER, &launch);
        let response = finish(&c, base, &launch, &token, Some(next)).await;
        assert_eq!(response.status(), 303, "{next:?}");
        assert_eq!(response.headers()[header::LOCATION], location, "{next:?}");
    }
    // A bad token is 401 and sets nothing, and does not use the state up.
    let launch = start(&c, base).await;
    let (status, page) = refused(finish(&c, base, &launch, "not-a-token", None).await).await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("malformed"), "{page}");
    let token = sign_in_token("lena", LEARNER, &launch);
    assert_eq!(finish(&c, base, &launch, &token, None).await.status(), 303);

    // `id_token`, as OIDC's form_post names it, is accepted too.
    let launch = start(&c, base).await;
    let token = sign_in_token("lena", LEARNER, &launch);
    let response = c
        .post(format!("{base}/session"))
        .header(header::COOKIE, &launch.cookie)
        .form(&[
            ("id_token", token.as_str()),
            ("state", launch.state.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_state_expires() {
    let served = Served::demo(&["--sign-in-state-ttl", "1s"]);
    let c = client();
    let launch = start(&c, &served.url).await;
    let token = sign_in_token("lena", LEARNER, &launch);
    // Past its life (the state's time is whole seconds).
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let (status, page) = refused(finish(&c, &served.url, &launch, &token, None).await).await;
    assert_eq!(status, 403, "{page}");
    assert!(
        page.contains("expired") && page.contains("--sign-in-state-ttl"),
        "{page}"
    );
}

/// With `--lms-authorization-url`, step 1 sends the browser to the LMS with the state,
/// the nonce and the OIDC parameters; what the LMS posts back signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launch_redirects_to_the_lms() {
    let served = Served::demo(&[
        "--lms-authorization-url",
        "https://lms.example/oidc/auth?tool=7",
        "--token-audience",
        "xbhost-client",
    ]);
    let c = client();
    let response = c
        .get(format!(
            "{}/session/login?login_hint=u%2042&lti_message_hint=m1",
            served.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let (target, query) = location.split_once('?').unwrap();
    assert_eq!(target, "https://lms.example/oidc/auth");
    let params: BTreeMap<&str, &str> = query
        .split('&')
        .map(|p| p.split_once('=').unwrap())
        .collect();
    assert_eq!(params["tool"], "7");
    assert_eq!(params["scope"], "openid");
    assert_eq!(params["response_type"], "id_token");
    assert_eq!(params["response_mode"], "form_post");
    assert_eq!(params["client_id"], "xbhost-client");
    assert_eq!(params["login_hint"], "u%2042");
    assert_eq!(params["lti_message_hint"], "m1");
    let set = set_cookie_named(&response, STATE_COOKIE).unwrap();
    let launch = Launch {
        state: params["state"].to_string(),
        nonce: params["nonce"].to_string(),
        cookie: cookie_pair(&set),
    };
    assert!(launch.cookie.ends_with(&launch.state), "{launch:?}");
    let mut claims = sign_in_claims("u 42", LEARNER, Some(&launch.nonce));
    claims.aud = Some(Audience::Many(vec!["other".into(), "xbhost-client".into()]));
    let token = keys().issue(&claims).unwrap();
    let response = finish(&c, &served.url, &launch, &token, None).await;
    assert_eq!(response.status(), 303);

    // An authorization URL that is not one: the server does not start.
    for bad in [
        "javascript:alert(1)",
        "/relative",
        "https://lms.example/a b",
    ] {
        let data = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(xbhost_bin())
            .arg("--data")
            .arg(data.path())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--lms-authorization-url",
                bad,
            ])
            .env("XBHOST_TOKEN_SECRET", xbhost_tests::served::TEST_SECRET)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}");
        assert!(err.contains("--lms-authorization-url"), "{bad}: {err}");
    }
}

fn claims(user: &str) -> Claims {
    sign_in_claims(user, LEARNER, None)
}

/// Every token, bearer or cookie or sign-in, is checked for `nbf` and its lifetime, and
/// for `iss` and `aud` when the host is told which to demand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_for_nbf_lifetime_issuer_and_audience() {
    let k = keys();
    let t = now();
    let render = |served: &Served, token: String| {
        let url = format!("{}?format=json", served.block_url("unit_1"));
        async move { send(client().get(url).bearer_auth(token)).await }
    };

    let served = Served::demo(&[]);
    let mut cases: Vec<(&str, Claims, Option<&str>)> = Vec::new();
    let mut early = claims("alice");
    early.nbf = Some(t + 600);
    cases.push(("nbf in the future", early, Some("not valid yet")));
    let mut started = claims("alice");
    started.nbf = Some(t - 10);
    cases.push(("nbf in the past", started, None));
    let mut long = claims("alice");
    // From the claim's own `iat`: `t` is read earlier and a second can pass in between.
    long.exp = long.iat.expect("sign-in claims carry iat") + 7200;
    cases.push(("two hours", long, Some("exp - iat = 7200 s")));
    let mut no_iat = claims("alice");
    no_iat.iat = None;
    no_iat.exp = t + 7200;
    cases.push((
        "no iat, two hours left",
        no_iat,
        Some("--max-token-lifetime"),
    ));
    let mut no_iat_short = claims("alice");
    no_iat_short.iat = None;
    no_iat_short.exp = t + 1800;
    cases.push(("no iat, half an hour left", no_iat_short, None));
    let mut future = claims("alice");
    future.iat = Some(t + 600);
    cases.push(("iat in the future", future, Some("iat")));
    for (name, claims, says) in cases {
        let (status, body) = render(&served, k.issue(&claims).unwrap()).await;
        match says {
            Some(says) => {
                assert_eq!(status, 401, "{name}: {body}");
                assert!(error_of(&body).contains(says), "{name}: {body}");
            }
            None => assert_eq!(status, 200, "{name}: {body}"),
        }
    }
    // Without a configured audience, tokens' audiences are not judged.
    let mut any_aud = claims("alice");
    any_aud.aud = Some(Audience::One("some-lms-tool".into()));
    assert_eq!(render(&served, k.issue(&any_aud).unwrap()).await.0, 200);
    drop(served);

    let served = Served::demo(&[
        "--token-issuer",
        "https://lms.example",
        "--token-audience",
        "xbhost",
        "--max-token-lifetime",
        "10m",
    ]);
    let good = || {
        let mut c = claims("alice");
        c.exp = t + 600;
        c.iss = Some("https://lms.example".into());
        c.aud = Some(Audience::One("xbhost".into()));
        c
    };
    let mut cases: Vec<(&str, Claims, Option<&str>)> = vec![("good", good(), None)];
    let mut no_iss = good();
    no_iss.iss = None;
    cases.push(("no iss", no_iss, Some("no \"iss\" claim")));
    let mut wrong_iss = good();
    wrong_iss.iss = Some("https://evil.example".into());
    cases.push(("wrong iss", wrong_iss, Some("issuer (iss) is not")));
    let mut no_aud = good();
    no_aud.aud = None;
    cases.push(("no aud", no_aud, Some("no \"aud\" claim")));
    let mut wrong_aud = good();
    wrong_aud.aud = Some(Audience::One("another-tool".into()));
    cases.push(("wrong aud", wrong_aud, Some("audience (aud)")));
    let mut many_aud = good();
    many_aud.aud = Some(Audience::Many(vec!["another-tool".into(), "xbhost".into()]));
    cases.push(("aud among several", many_aud, None));
    let mut over = good();
    over.exp = t + 1200;
    cases.push(("twenty minutes", over, Some("maximum of 600 s")));
    for (name, claims, says) in cases {
        let token = k.issue(&claims).unwrap();
        let (status, body) = render(&served, token.clone()).await;
        // The session cookie passes the same checks.
        let (cookie_status, cookie_body) =
            with_cookie(&served, &format!("xbhost_session={token}")).await;
        assert_eq!(status, cookie_status, "{name}: {body} / {cookie_body}");
        match says {
            Some(says) => {
                assert_eq!(status, 401, "{name}: {body}");
                assert!(error_of(&body).contains(says), "{name}: {body}");
            }
            None => assert_eq!(status, 200, "{name}: {body}"),
        }
    }
    // And so does a sign-in: a token for another audience does not sign in.
    let c = client();
    let launch = start(&c, &served.url).await;
    let mut foreign = good();
    foreign.aud = Some(Audience::One("another-tool".into()));
    foreign.nonce = Some(launch.nonce.clone());
    let token = k.issue(&foreign).unwrap();
    let (status, page) = refused(finish(&c, &served.url, &launch, &token, None).await).await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("--token-audience"), "{page}");
    let mut fine = good();
    fine.nonce = Some(launch.nonce.clone());
    let token = k.issue(&fine).unwrap();
    let response = finish(&c, &served.url, &launch, &token, None).await;
    assert_eq!(response.status(), 303);
}

/// `--secure-cookies`: the session and state cookies carry the `__Host-` prefix (Secure,
/// path `/`, no Domain), the state cookie is `SameSite=None` for the LMS's cross-site
/// post, and the server reads the session only under its `__Host-` name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_cookies_are_host_prefixed() {
    let served = Served::demo(&["--secure-cookies", "--dev-login"]);
    let c = client();
    let base = &served.url;
    // A plain-named session cookie (which a sibling site could set) is not read.
    let (status, body) =
        with_cookie(&served, &format!("xbhost_session={}", learner_token("sam"))).await;
    assert_eq!(status, 401, "{body}");
    assert!(error_of(&body).contains("no token"), "{body}");
    let launch = start_as(&c, base, "__Host-xbhost_sign_in").await;
    let token = sign_in_token("sam", LEARNER, &launch);
    let response = finish(&c, base, &launch, &token, None).await;
    assert_eq!(response.status(), 303);
    let set = set_cookie_named(&response, "__Host-xbhost_session")
        .unwrap_or_else(|| panic!("{:?}", set_cookies(&response)));
    for attribute in ["Secure", "Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(set.contains(attribute), "{attribute}: {set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    assert!(set_cookie_named(&response, "xbhost_session").is_none());
    let (status, body) = with_cookie(&served, &format!("__Host-xbhost_session={token}")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = with_cookie(&served, &format!("xbhost_session={token}")).await;
    assert_eq!(status, 401, "{body}");

    // The dev sign-in page's state cookie, and the session it makes.
    let page = c.get(format!("{base}/workbench")).send().await.unwrap();
    let state_cookie = set_cookie_named(&page, "__Host-xbhost_sign_in").unwrap();
    for attribute in ["Secure", "Path=/", "HttpOnly", "SameSite=None"] {
        assert!(
            state_cookie.contains(attribute),
            "{attribute}: {state_cookie}"
        );
    }
    assert!(!state_cookie.contains("Domain"), "{state_cookie}");
    let state = page_state(&page.text().await.unwrap());
    let response = c
        .post(format!("{base}/dev-login"))
        .header(header::COOKIE, cookie_pair(&state_cookie))
        .form(&[("kind", "new"), ("state", state.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let set = set_cookie_named(&response, "__Host-xbhost_session").unwrap();
    assert!(set.contains("Secure") && set.contains("Path=/"), "{set}");
}

/// The dev sign-in is bound to the state its page set in the browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_sign_in_is_bound_to_its_pages_state() {
    let served = Served::demo(&["--dev-login"]);
    let c = client();
    let base = &served.url;
    let page = c.get(format!("{base}/workbench")).send().await.unwrap();
    let cookie = cookie_pair(&set_cookie_named(&page, STATE_COOKIE).unwrap());
    let state = page_state(&page.text().await.unwrap());
    // The same browser loading the page again keeps its state (both copies work).
    let again = c
        .get(format!("{base}/workbench"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert!(set_cookie_named(&again, STATE_COOKIE).is_none());
    assert_eq!(page_state(&again.text().await.unwrap()), state);

    let post = |cookie: Option<String>, state: Option<&str>, site: Option<&str>| {
        let mut form = vec![("kind", "named"), ("user", "mallory"), ("role", "staff")];
        if let Some(state) = state {
            form.push(("state", state));
        }
        let mut request = c.post(format!("{base}/dev-login")).form(&form);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        request.send()
    };
    let other = {
        let page = c.get(format!("{base}/workbench")).send().await.unwrap();
        cookie_pair(&set_cookie_named(&page, STATE_COOKIE).unwrap())
    };
    for (name, cookie, state, site, says) in [
        (
            "no state cookie",
            None,
            Some(state.as_str()),
            None,
            "no sign-in state",
        ),
        (
            "no state field",
            Some(cookie.clone()),
            None,
            None,
            "has no state",
        ),
        (
            "another browser's",
            Some(other),
            Some(state.as_str()),
            None,
            "not the one",
        ),
        (
            "cross-site",
            Some(cookie.clone()),
            Some(state.as_str()),
            Some("cross-site"),
            "cross-site",
        ),
    ] {
        let (status, page) = refused(post(cookie, state, site).await.unwrap()).await;
        assert_eq!(status, 403, "{name}: {page}");
        assert!(page.contains(says), "{name}: {page}");
    }
    let response = post(Some(cookie.clone()), Some(&state), Some("same-origin"))
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let session = set_cookie_named(&response, "xbhost_session").unwrap();
    assert!(
        set_cookie_named(&response, STATE_COOKIE)
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, body) = with_cookie(&served, &cookie_pair(&session)).await;
    assert_eq!(status, 200, "{body}");
    // Once.
    let (status, page) = refused(post(Some(cookie), Some(&state), None).await.unwrap()).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("already been used"), "{page}");
}

/// Signing out revokes the session on this host: a copy of its cookie, and its token
/// as a bearer, are refused afterwards, and it cannot sign in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_revokes_the_session() {
    let served = Served::demo(&["--dev-login"]);
    let c = client();
    let base = &served.url;
    let sign_out = |cookie: String| {
        let c = c.clone();
        async move {
            let page = c
                .get(format!("{base}/workbench"))
                .header(header::COOKIE, &cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            c.post(format!("{base}/sign-out"))
                .header(header::COOKIE, &cookie)
                .form(&[("csrf_token", page_csrf(&page).as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    // Any session: its cookie copied before sign-out is refused after it.
    let direct = format!("xbhost_session={}", learner_token("kim"));
    assert_eq!(with_cookie(&served, &direct).await.0, 200);
    assert_eq!(sign_out(direct.clone()).await.status(), 303);
    let (status, body) = with_cookie(&served, &direct).await;
    assert_eq!(status, 401, "{body}");

    // A session from the LMS's launch.
    let cookie = sign_in(&c, base, "lena", LEARNER).await;
    let token = cookie.trim_start_matches("xbhost_session=").to_string();
    let copy = cookie.clone();
    let page = c
        .get(format!("{base}/workbench"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page_csrf(&page);
    // Without the session's CSRF token, signing out is refused and revokes nothing.
    let (status, _) = send(
        c.post(format!("{base}/sign-out"))
            .header(header::COOKIE, &cookie),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(with_cookie(&served, &copy).await.0, 200);
    let response = c
        .post(format!("{base}/sign-out"))
        .header(header::COOKIE, &cookie)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let set = set_cookie_named(&response, "xbhost_session").unwrap();
    assert!(set.contains("Max-Age=0"), "{set}");
    let (status, body) = with_cookie(&served, &copy).await;
    assert_eq!(status, 401, "{body}");
    assert!(error_of(&body).contains("signed out"), "{body}");
    let (status, body) = send(
        c.get(format!("{}?format=json", served.block_url("unit_1")))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(error_of(&body).contains("revoked"), "{body}");
    // The workbench with the copied cookie offers sign-in again and says why.
    let page = c
        .get(format!("{base}/workbench"))
        .header(header::COOKIE, &copy)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("signed out on this host"), "{page}");
    // Other sessions are untouched.
    let (status, _) = send(
        c.get(format!("{}?format=json", served.block_url("unit_1")))
            .bearer_auth(learner_token("lena")),
    )
    .await;
    assert_eq!(status, 200);
    // A dev sign-in's session is revoked the same way.
    let page = c.get(format!("{base}/workbench")).send().await.unwrap();
    let state_cookie = cookie_pair(&set_cookie_named(&page, STATE_COOKIE).unwrap());
    let state = page_state(&page.text().await.unwrap());
    let response = c
        .post(format!("{base}/dev-login"))
        .header(header::COOKIE, &state_cookie)
        .form(&[("kind", "new"), ("state", state.as_str())])
        .send()
        .await
        .unwrap();
    let dev = cookie_pair(&set_cookie_named(&response, "xbhost_session").unwrap());
    assert_eq!(sign_out(dev.clone()).await.status(), 303);
    assert_eq!(with_cookie(&served, &dev).await.0, 401);
}

/// The records of used sign-ins and revoked sessions hold at most `--max-token-records`
/// ids each; what does not fit is refused with 503 naming the flag (never by forgetting
/// an id early).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_records_are_bounded() {
    let served = Served::demo(&["--max-token-records", "3"]);
    let c = client();
    let base = &served.url;
    // A sign-in records its token and its state: one fits in three, two do not.
    sign_in(&c, base, "a", LEARNER).await;
    let launch = start(&c, base).await;
    let token = sign_in_token("b", LEARNER, &launch);
    let (status, page) = refused(finish(&c, base, &launch, &token, None).await).await;
    assert_eq!(status, 503, "{page}");
    assert!(page.contains("--max-token-records"), "{page}");
    // Sign-outs: three sessions are revoked, the fourth cannot be, and says so (its
    // cookie is still forgotten by the browser).
    for (i, user) in ["p", "q", "r", "s"].into_iter().enumerate() {
        let cookie = format!("xbhost_session={}", learner_token(user));
        let page = c
            .get(format!("{base}/workbench"))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let response = c
            .post(format!("{base}/sign-out"))
            .header(header::COOKIE, &cookie)
            .form(&[("csrf_token", page_csrf(&page).as_str())])
            .send()
            .await
            .unwrap();
        let set = set_cookie_named(&response, "xbhost_session").unwrap();
        assert!(set.contains("Max-Age=0"), "{user}: {set}");
        if i < 3 {
            assert_eq!(response.status(), 303, "{user}");
            assert_eq!(with_cookie(&served, &cookie).await.0, 401, "{user}");
        } else {
            assert_eq!(response.status(), 503, "{user}");
            let page = response.text().await.unwrap();
            assert!(page.contains("--max-token-records"), "{page}");
        }
    }
    // Startup refuses a record that holds nothing.
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(xbhost_bin())
        .arg("--data")
        .arg(data.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--max-token-records",
            "0",
        ])
        .env("XBHOST_TOKEN_SECRET", xbhost_tests::served::TEST_SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-token-records"));
}

/// `xbhost token` signs what the checks demand (`--issuer`, `--audience`, `--nonce`), so
/// a sign-in can be tried by hand against a server that demands them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_command_signs_what_the_checks_demand() {
    let served = Served::demo(&["--token-issuer", "lms", "--token-audience", "xbhost"]);
    let c = client();
    let launch = start(&c, &served.url).await;
    let sign = |extra: &[&str]| {
        let out = std::process::Command::new(xbhost_bin())
            .args(["token", "--user", "hand", "--role", "*=learner"])
            .args(extra)
            .env("XBHOST_TOKEN_SECRET", xbhost_tests::served::TEST_SECRET)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let plain = sign(&[]);
    let (status, body) = send(
        c.get(format!("{}?format=json", served.block_url("unit_1")))
            .bearer_auth(&plain),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    // Both are missing: jsonwebtoken names whichever it checks first (its order is a
    // hash set's).
    let error = error_of(&body);
    assert!(
        error.contains("no \"iss\" claim") || error.contains("no \"aud\" claim"),
        "{body}"
    );
    let token = sign(&[
        "--issuer",
        "lms",
        "--audience",
        "xbhost",
        "--nonce",
        &launch.nonce,
    ]);
    let response = finish(&c, &served.url, &launch, &token, None).await;
    assert_eq!(response.status(), 303);
}
