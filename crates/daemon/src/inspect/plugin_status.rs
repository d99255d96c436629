//! What the plugin's own HTTP endpoint says, for `inspect` when a metrics
//! address is known (`--metrics-address` / `METRICS_ADDRESS`, as in the
//! plugin's container): the config the node's label selected, which GPUs
//! DRA serves (with `--dra`) and `/readyz`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bound on a response read from the plugin.
const MAX_RESPONSE: u64 = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginStatus {
    pub address: String,
    /// The named config selected by the node label (per-node config only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_selected: Option<String>,
    /// With `--dra`: who serves each GPU (UUID → `dra` or `device-plugin`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub gpu_owners: BTreeMap<String, String>,
    pub ready: bool,
    /// `/readyz`'s reasons when not ready.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Set when the endpoint could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The address to dial for a listen address: `:2112` and `0.0.0.0:2112`
/// mean this host.
pub fn dial_address(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some(("" | "0.0.0.0" | "[::]", port)) => format!("127.0.0.1:{port}"),
        _ => listen.to_string(),
    }
}

/// The `config` label of `gpu_device_plugin_config_selected` in a scrape.
pub fn selected_config(metrics: &str) -> Option<String> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix("gpu_device_plugin_config_selected{config=\"")?;
        let (name, tail) = rest.split_once("\"}")?;
        (tail.trim() == "1").then(|| name.to_string())
    })
}

/// `gpu_device_plugin_gpu_owner{uuid,owner}` series of a scrape: UUID → owner.
pub fn gpu_owners(metrics: &str) -> BTreeMap<String, String> {
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("gpu_device_plugin_gpu_owner{uuid=\"")?;
            let (uuid, rest) = rest.split_once("\",owner=\"")?;
            let (owner, tail) = rest.split_once("\"}")?;
            (tail.trim() == "1").then(|| (uuid.to_string(), owner.to_string()))
        })
        .collect()
}

/// Status code and body of `GET path` (HTTP/1.1, connection closed after).
async fn get(addr: &str, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        stream
            .take(MAX_RESPONSE)
            .read_to_end(&mut raw)
            .await
            .map_err(|e| e.to_string())?;
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("{addr}{path}: not an HTTP response"))?;
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("{addr}{path}: no status code"))?;
        Ok((code, body.to_string()))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("{addr}{path}: no answer in {timeout:?}"))?
}

/// Reads `/metrics` and `/readyz` of the plugin listening on `listen`.
pub async fn plugin_status(listen: &str, timeout: Duration) -> PluginStatus {
    let address = dial_address(listen);
    let mut status = PluginStatus {
        address: address.clone(),
        ..PluginStatus::default()
    };
    match get(&address, "/metrics", timeout).await {
        Ok((_, body)) => {
            status.config_selected = selected_config(&body);
            status.gpu_owners = gpu_owners(&body);
        }
        Err(e) => {
            status.error = Some(e);
            return status;
        }
    }
    match get(&address, "/readyz", timeout).await {
        Ok((code, body)) => {
            status.ready = code == 200;
            if !status.ready {
                status.reasons = body
                    .lines()
                    .map(str::to_string)
                    .filter(|l| !l.is_empty())
                    .collect();
            }
        }
        Err(e) => status.error = Some(e),
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_dial_this_host() {
        for (listen, want) in [
            (":2112", "127.0.0.1:2112"),
            ("0.0.0.0:2112", "127.0.0.1:2112"),
            ("[::]:2112", "127.0.0.1:2112"),
            ("10.1.2.3:9000", "10.1.2.3:9000"),
        ] {
            assert_eq!(dial_address(listen), want, "{listen}");
        }
    }

    #[test]
    fn the_selected_config_is_read_from_a_scrape() {
        let scrape = "# HELP x\ngpu_device_plugin_config_selected{config=\"time-sliced\"} 1\ngpu_device_plugin_kube_api_up{watch=\"node\"} 1\n";
        assert_eq!(selected_config(scrape).as_deref(), Some("time-sliced"));
        assert_eq!(selected_config("gpu_device_plugin_devices{} 1\n"), None);
    }

    #[test]
    fn gpu_owners_are_read_from_a_scrape() {
        let scrape = "gpu_device_plugin_gpu_owner{uuid=\"GPU-a\",owner=\"dra\"} 1\ngpu_device_plugin_gpu_owner{uuid=\"GPU-b\",owner=\"device-plugin\"} 1\n";
        let owners = gpu_owners(scrape);
        assert_eq!(owners.get("GPU-a").map(String::as_str), Some("dra"));
        assert_eq!(
            owners.get("GPU-b").map(String::as_str),
            Some("device-plugin")
        );
        assert!(gpu_owners("gpu_device_plugin_devices{} 1\n").is_empty());
    }
}
