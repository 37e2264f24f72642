//! Talking to a [`Served`](crate::served::Served) server over HTTP: a client that does not
//! follow redirects, status-and-JSON requests, and a chunked post over a plain socket.

use reqwest::{Client, StatusCode};
use serde_json::Value;

pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Status and body (JSON) of a request.
pub async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

pub fn error_of(body: &Value) -> String {
    body["error"].as_str().unwrap_or_default().to_string()
}

/// Posts a chunked body (no Content-Length) over a plain socket; returns the status line.
pub fn post_chunked(base: &str, path: &str, token: &str, chunks: usize, chunk: usize) -> String {
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
