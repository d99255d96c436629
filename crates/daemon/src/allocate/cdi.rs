//! The CDI parts of an Allocate response (reference `cdi-and-mps.md` §A9):
//! the qualified names of the request's physical devices, as one
//! `cdi.k8s.io/nvidia-device-plugin_<uuid>` annotation (`cdi-annotations`)
//! and as `cdi_devices` (`cdi-cri`). Memory only: a fresh random UUID per
//! container response, as NVIDIA's plugin does, and no file I/O.

use super::response::CdiAllocate;
use crate::cdi::qualified_name;
use crate::v1beta1::{CdiDevice, ContainerAllocateResponse};

/// The annotation key's name before the UUID (CDI's `AnnotationKey`).
pub const ANNOTATION_PLUGIN: &str = "nvidia-device-plugin";

/// The annotation key for one container response.
pub fn annotation_key(prefix: &str, response_id: &str) -> String {
    format!(
        "{prefix}{ANNOTATION_PLUGIN}_{}",
        response_id.replace('/', "_")
    )
}

/// Adds the CDI names of `ids` (physical device names, deduplicated, in
/// request order), then the gated specs' names, to `response`. Nothing is
/// added when that list is empty.
pub fn add_cdi(response: &mut ContainerAllocateResponse, ids: &[&str], cdi: &CdiAllocate) {
    let mut names: Vec<String> = ids.iter().map(|id| qualified_name(id)).collect();
    names.extend(cdi.gated.iter().cloned());
    if names.is_empty() {
        return;
    }
    if cdi.annotations {
        let key = annotation_key(&cdi.annotation_prefix, &uuid::Uuid::new_v4().to_string());
        response.annotations.insert(key, names.join(","));
    }
    if cdi.cri {
        response
            .cdi_devices
            .extend(names.into_iter().map(|name| CdiDevice { name }));
    }
}

#[cfg(test)]
#[path = "cdi_tests.rs"]
mod tests;
