//! A ResourceClaim as read from the API, reduced to what prepare needs:
//! the allocation results of this driver (one entry per device, with the
//! requests it serves) and the validated opaque config. Pure: the JSON of
//! the claim in, typed results or a per-claim error out.

use serde_json::Value;

use super::DRIVER;

/// At most this many allocation results are read from one claim
/// (resource.k8s.io/v1 allows 32 requests × 128 devices; far beyond a node).
pub const MAX_RESULTS: usize = 4096;
/// The API group of this driver's opaque config, as NVIDIA names it.
pub const CONFIG_API_VERSION: &str = "resource.nvidia.com/v1beta1";
/// The opaque config kinds this driver knows.
pub const CONFIG_KINDS: [&str; 2] = ["GpuConfig", "MigDeviceConfig"];

/// One allocated device of this driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocated {
    pub pool: String,
    pub device: String,
    /// The claim's requests this device serves, in result order.
    pub requests: Vec<String>,
    pub share_id: Option<String>,
}

/// Why a claim cannot be prepared (sent back in the claim's prepare result).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "claim uid {0:?} is not a Kubernetes UID (letters, digits and '-', at most 128): refused, it names the claim's spec file"
    )]
    BadUid(String),
    #[error("claim {0} is not in the API any more")]
    NotFound(String),
    #[error(
        "claim {name} has uid {found}, the kubelet asked for {wanted}: the claim was re-created"
    )]
    WrongUid {
        name: String,
        found: String,
        wanted: String,
    },
    #[error("claim {0} is not allocated")]
    NotAllocated(String),
    #[error("claim {0} has more than {MAX_RESULTS} allocation results")]
    TooManyResults(String),
    #[error("claim {claim}: allocation result {index} lacks {field}")]
    BadResult {
        claim: String,
        index: usize,
        field: &'static str,
    },
    #[error("claim {claim}: opaque config for {DRIVER}: {problem}")]
    Config { claim: String, problem: String },
    #[error("claim {claim}: device {device} of pool {pool} is not a device of this node")]
    UnknownDevice {
        claim: String,
        pool: String,
        device: String,
    },
    #[error("claim {claim}: cannot read it from the API: {error}")]
    Api { claim: String, error: String },
    #[error("claim {claim}: cannot write its CDI spec: {error}")]
    Cdi { claim: String, error: String },
}

/// Checks a claim UID from the kubelet before it becomes part of a file
/// name and a CDI device name.
pub fn check_uid(uid: &str) -> Result<(), ClaimError> {
    let ok = !uid.is_empty()
        && uid.len() <= 128
        && uid.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        && !uid.starts_with('-')
        && !uid.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ClaimError::BadUid(uid.to_string()))
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Checks one opaque config of this driver: `apiVersion`
/// `resource.nvidia.com/v1beta1`, a known kind, no other fields (per-claim
/// sharing, NVIDIA's `sharing`, is not supported yet and is refused).
pub fn check_config(parameters: &Value) -> Result<(), String> {
    let Some(obj) = parameters.as_object() else {
        return Err("parameters must be an object with apiVersion and kind".into());
    };
    match str_at(parameters, "apiVersion") {
        Some(CONFIG_API_VERSION) => {}
        Some(other) => {
            return Err(format!(
                "unknown apiVersion {other:?} (known: {CONFIG_API_VERSION})"
            ));
        }
        None => return Err("apiVersion is missing".into()),
    }
    match str_at(parameters, "kind") {
        Some(kind) if CONFIG_KINDS.contains(&kind) => {}
        Some(other) => {
            return Err(format!(
                "unknown kind {other:?} (known: {})",
                CONFIG_KINDS.join(", ")
            ));
        }
        None => return Err("kind is missing".into()),
    }
    for key in obj.keys() {
        match key.as_str() {
            "apiVersion" | "kind" => {}
            "sharing" => {
                return Err(
                    "sharing (per-claim time-slicing or MPS) is not supported by this driver yet; share a device by sharing the claim"
                        .into(),
                );
            }
            other => return Err(format!("unknown field {other:?}")),
        }
    }
    Ok(())
}

/// The devices of this driver in `claim` (a ResourceClaim as JSON, v1,
/// v1beta2 or v1beta1: the fields used are the same), after checking that
/// it is the claim the kubelet means (`uid`) and that its opaque config for
/// this driver is valid. Results of other drivers are skipped.
pub fn allocated(claim: &Value, name: &str, uid: &str) -> Result<Vec<Allocated>, ClaimError> {
    let found = claim
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if found != uid {
        return Err(ClaimError::WrongUid {
            name: name.into(),
            found: found.into(),
            wanted: uid.into(),
        });
    }
    let Some(devices) = claim.pointer("/status/allocation/devices") else {
        return Err(ClaimError::NotAllocated(name.into()));
    };
    let empty = Vec::new();
    let configs = devices
        .get("config")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for config in configs {
        let Some(opaque) = config.get("opaque") else {
            continue;
        };
        if str_at(opaque, "driver") != Some(DRIVER) {
            continue;
        }
        let parameters = opaque.get("parameters").unwrap_or(&Value::Null);
        check_config(parameters).map_err(|problem| ClaimError::Config {
            claim: name.into(),
            problem,
        })?;
    }
    let results = devices
        .get("results")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    if results.len() > MAX_RESULTS {
        return Err(ClaimError::TooManyResults(name.into()));
    }
    let mut out: Vec<Allocated> = Vec::new();
    for (index, r) in results.iter().enumerate() {
        if str_at(r, "driver") != Some(DRIVER) {
            continue;
        }
        let field = |field: &'static str| {
            str_at(r, field).ok_or(ClaimError::BadResult {
                claim: name.into(),
                index,
                field,
            })
        };
        let (request, pool, device) = (field("request")?, field("pool")?, field("device")?);
        let share_id = str_at(r, "shareID").map(str::to_string);
        match out
            .iter_mut()
            .find(|a| a.pool == pool && a.device == device && a.share_id == share_id)
        {
            Some(a) => a.requests.push(request.into()),
            None => out.push(Allocated {
                pool: pool.into(),
                device: device.into(),
                requests: vec![request.into()],
                share_id,
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
