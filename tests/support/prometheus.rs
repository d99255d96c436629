//! A real Prometheus server (Debian's `prometheus`, found through the
//! `PROMETHEUS` env var) scraping one target every second, and its HTTP query
//! API. Unset `PROMETHEUS` = the caller skips; set but not runnable = panic.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::http::get_http10;

/// How long Prometheus may take to start and scrape (a CI machine is slow).
pub const PROMETHEUS_WAIT: Duration = Duration::from_secs(60);

/// The `PROMETHEUS` binary, or `None` (with the reason printed) when unset.
pub fn binary() -> Option<PathBuf> {
    match std::env::var_os("PROMETHEUS") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            println!("not run: PROMETHEUS is not set (a real Prometheus server scraping /metrics)");
            None
        }
    }
}

/// One series of an instant-query answer: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `bin` scraping `target`'s `/metrics` every second.
    pub fn start(bin: &PathBuf, target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 scrape_configs:\n  - job_name: gpu-device-plugin\n    scrape_interval: 1s\n    \
                 static_configs: [{{targets: ['{target}']}}]\n"
            ),
        )
        .expect("write prometheus.yml");
        let addr = free_port();
        let log = dir.path().join("prometheus.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("PROMETHEUS={} does not run: {e}", bin.display()));
        Prometheus {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The answer to the instant query `expr`, or the error Prometheus gave.
    pub async fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let (code, body) = get_http10(self.addr, &path).await;
        if code != 200 {
            return Err(format!("{code}: {body}"));
        }
        parse_vector(&body)
    }

    /// Waits until `expr` returns at least `n` series; returns them.
    pub async fn wait_series(&mut self, expr: &str, n: usize) -> Vec<Sample> {
        let deadline = Instant::now() + PROMETHEUS_WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", self.log());
            }
            // Not listening yet, or not scraped yet: both are "not yet".
            let got = match tokio::net::TcpStream::connect(self.addr).await {
                Ok(_) => self.query(expr).await.unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{expr} never had {n} series (last: {got:?}); prometheus log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await; // poll, bounded
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address nobody listens on right now.
fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("local addr")
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The samples of a `resultType: vector` answer.
fn parse_vector(body: &str) -> Result<Vec<Sample>, String> {
    let json: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
    if json["status"] != "success" || json["data"]["resultType"] != "vector" {
        return Err(body.to_string());
    }
    let results = json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    results
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let value = r["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("no value in {r}"))?;
            Ok(Sample { labels, value })
        })
        .collect()
}
