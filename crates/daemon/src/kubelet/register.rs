//! One registration of a resource with the kubelet.

use std::path::Path;
use std::time::Duration;

use super::{API_VERSION, unix_channel};
use crate::plugin::service::plugin_options;
use crate::v1beta1::RegisterRequest;
use crate::v1beta1::registration_client::RegistrationClient;

/// The kubelet dials the plugin back before answering, with a 10 s timeout of
/// its own; give it a little more.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(12);

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("kubelet socket {0} does not exist yet (is the kubelet running?)")]
    NoKubelet(String),
    #[error("cannot connect to the kubelet at {socket}: {message}")]
    Connect { socket: String, message: String },
    #[error("the kubelet refused to register {resource}: {message}")]
    Refused { resource: String, message: String },
    #[error("registering {0} with the kubelet timed out")]
    Timeout(String),
}

/// Registers `resource`, served on the socket file `endpoint` next to the
/// kubelet socket. Returns once the kubelet has accepted it.
pub async fn register(
    kubelet_socket: &Path,
    resource: &str,
    endpoint: &str,
) -> Result<(), RegisterError> {
    let socket = kubelet_socket.display().to_string();
    if !kubelet_socket.exists() {
        return Err(RegisterError::NoKubelet(socket));
    }
    let attempt = async {
        let channel = unix_channel(kubelet_socket)
            .await
            .map_err(|e| RegisterError::Connect {
                socket: socket.clone(),
                message: error_chain(&e),
            })?;
        RegistrationClient::new(channel)
            .register(RegisterRequest {
                version: API_VERSION.into(),
                endpoint: endpoint.into(),
                resource_name: resource.into(),
                options: Some(plugin_options()),
            })
            .await
            .map_err(|status| RegisterError::Refused {
                resource: resource.into(),
                message: status.message().to_string(),
            })?;
        Ok(())
    };
    tokio::time::timeout(REGISTER_TIMEOUT, attempt)
        .await
        .map_err(|_| RegisterError::Timeout(resource.into()))?
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
