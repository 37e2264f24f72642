//! Headless Debian Chromium for the browser tests, through its chromedriver: the driver on
//! a free port (killed on drop), a session with a fresh profile, script evaluation, the dev
//! sign-in and opening a workbench unit. One copy for every browser test.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::find_program;

/// chromedriver on a free port, killed on drop.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(find_program(&["chromedriver"]))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The WebDriver URL, for a session with capabilities of its own.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A Chromium session (headless, offline, its profile in `profile`).
    pub async fn chromium(&self, profile: &Path) -> Client {
        let Value::Object(capabilities) = json!({
            "goog:chromeOptions": {
                "binary": find_program(&["chromium", "chromium-browser"]),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1400,1000", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--mute-audio",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }) else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a chromium session through chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `script` (a function body) in the page; panics naming it if it throws.
pub async fn js(client: &Client, script: &str) -> Value {
    client
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// Signs in through the dev sign-in's named form (signing out first if signed in).
pub async fn sign_in(client: &Client, base: &str, user: &str, role: &str) {
    client.goto(&format!("{base}/workbench")).await.unwrap();
    if let Ok(button) = client
        .find(Locator::Css("form[action='/sign-out'] button"))
        .await
    {
        button.click().await.unwrap();
    }
    let form = client
        .wait()
        .for_element(Locator::Css("form#named-user"))
        .await
        .unwrap();
    form.find(Locator::Css("input[name='user']"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    form.find(Locator::Css(&format!(
        "select[name='role'] option[value='{role}']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    form.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("form[action='/sign-out']"))
        .await
        .unwrap();
}

/// Opens a unit in the workbench and waits for it to be rendered.
pub async fn open_unit(client: &Client, base: &str, course: &str, unit: &str) {
    client
        .goto(&format!(
            "{base}/workbench?course={}&unit={unit}",
            course.replace('+', "%2B")
        ))
        .await
        .unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(&format!("#render [data-usage-id='{unit}']")))
        .await
        .unwrap_or_else(|e| panic!("unit {unit} of {course} did not render: {e}"));
}
