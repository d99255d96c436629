//! A tiny HTTP/1.1 GET over a TCP stream (enough for /metrics and probes),
//! and finding the plugin's metrics address in its log.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::WAIT;
use super::process::Plugin;

/// Status code and body of `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (code, _, body) = request(addr, path, "HTTP/1.1", "").await;
    (code, body)
}

/// Status code and body of `GET path` as HTTP/1.0, so that a server that
/// would chunk an HTTP/1.1 answer (Go's net/http) sends the body as is.
pub async fn get_http10(addr: SocketAddr, path: &str) -> (u16, String) {
    let (code, _, body) = request(addr, path, "HTTP/1.0", "").await;
    (code, body)
}

/// Status, head and body of `GET path` with `headers` (each ending in CRLF).
async fn request(
    addr: SocketAddr,
    path: &str,
    version: &str,
    headers: &str,
) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} {version}\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (code, head.to_string(), body.to_string())
}

/// Waits until `GET path` answers `code`; returns the last body.
pub async fn wait_status(addr: SocketAddr, path: &str, code: u16) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (got, body) = get(addr, path).await;
        if got == code {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} stayed {got}: {body}");
        tokio::time::sleep(Duration::from_millis(5)).await; // poll, bounded by WAIT
    }
}

/// The address the plugin logged for its metrics server.
pub async fn metrics_address(p: &Plugin) -> SocketAddr {
    const MARK: &str = "metrics listening on http://";
    let deadline = Instant::now() + WAIT;
    loop {
        let log = p.log();
        if let Some(rest) = log.split_once(MARK).map(|(_, r)| r) {
            let addr: String = rest
                .chars()
                .take_while(|c| c.is_ascii_hexdigit() || ".:[]".contains(*c))
                .collect();
            return addr.parse().unwrap_or_else(|e| panic!("{addr:?}: {e}"));
        }
        assert!(Instant::now() < deadline, "no metrics address; log:\n{log}");
        tokio::time::sleep(Duration::from_millis(5)).await; // poll the log, bounded by WAIT
    }
}

/// The value of one series (`name{labels}` exactly as exposed) in a scrape.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Waits until the series `series` exists with a value `>= at_least`.
pub async fn wait_metric(addr: SocketAddr, series: &str, at_least: f64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, text) = get(addr, "/metrics").await;
        if metric(&text, series).is_some_and(|v| v >= at_least) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never reached {at_least}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await; // poll, bounded by WAIT
    }
}

/// Status, `Content-Type` and body of `GET path` sent with `Accept: accept`.
pub async fn get_accept(addr: SocketAddr, path: &str, accept: &str) -> (u16, String, String) {
    let (code, head, body) =
        request(addr, path, "HTTP/1.1", &format!("Accept: {accept}\r\n")).await;
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (code, content_type, body)
}

/// Waits until a scrape has a line for which `pred` holds; returns the scrape.
pub async fn wait_scrape(addr: SocketAddr, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, text) = get(addr, "/metrics").await;
        if pred(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "never saw {what}:\n{text}");
        tokio::time::sleep(Duration::from_millis(5)).await; // poll, bounded by WAIT
    }
}
