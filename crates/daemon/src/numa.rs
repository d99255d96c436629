//! NUMA node of a GPU, looked up by its PCI bus id: from sysfs
//! (`/sys/bus/pci/devices/<bus>/numa_node`, as NVIDIA's plugin does) or, with the
//! `hwloc` cargo feature, from the hwloc topology.

use std::path::PathBuf;

/// Where NUMA nodes are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumaSource {
    /// `<root>/sys/bus/pci/devices/<bus>/numa_node`; `root` is `/` on a node.
    Sysfs { root: PathBuf },
    /// The hwloc topology of this machine, or of an XML export of it when
    /// `xml` is set (tests, or a topology captured on another machine).
    #[cfg(feature = "hwloc")]
    Hwloc { xml: Option<PathBuf> },
}

impl Default for NumaSource {
    fn default() -> Self {
        NumaSource::Sysfs {
            root: PathBuf::from("/"),
        }
    }
}

/// Normalises a PCI bus id to the lower-case sysfs form `0000:07:00.0`.
///
/// Accepts NVML's `00000000:07:00.0` (8-digit domain, possibly NUL-padded),
/// the sysfs form, and the domain-less `07:00.0`. Anything else is `None`, so
/// the result is always safe to use as a path component.
pub fn normalize_pci_bus_id(bus_id: &str) -> Option<String> {
    let raw = bus_id.split('\0').next().unwrap_or_default().trim();
    let lower = raw.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split(':').collect();
    let (domain, bus, devfn) = match parts.as_slice() {
        [domain, bus, devfn] => (*domain, *bus, *devfn),
        [bus, devfn] => ("0000", *bus, *devfn),
        _ => return None,
    };
    let domain = match domain.len() {
        8 => domain.strip_prefix("0000")?,
        4 => domain,
        _ => return None,
    };
    let (dev, func) = devfn.split_once('.')?;
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let func_ok = func.len() == 1 && matches!(func.as_bytes().first(), Some(b'0'..=b'7'));
    if !(hex(domain, 4) && hex(bus, 2) && hex(dev, 2) && func_ok) {
        return None;
    }
    Some(format!("{domain}:{bus}:{dev}.{func}"))
}

/// Interprets the text of a sysfs `numa_node` file: a node number, or `None`
/// for a negative value (no NUMA affinity) or garbage.
pub fn parse_numa_node(text: &str) -> Result<Option<u32>, String> {
    let trimmed = text.trim();
    let value: i64 = trimmed
        .parse()
        .map_err(|_| format!("not an integer: {trimmed:?}"))?;
    if value < 0 {
        return Ok(None);
    }
    u32::try_from(value)
        .map(Some)
        .map_err(|_| format!("out of range: {value}"))
}

/// NUMA node of the PCI device `pci_bus_id` (NVML or sysfs form); `None` when
/// unknown: no such device, unreadable file, negative value or garbage.
pub fn numa_node(source: &NumaSource, pci_bus_id: &str) -> Option<u32> {
    let Some(bus) = normalize_pci_bus_id(pci_bus_id) else {
        tracing::warn!(pci_bus_id, "not a PCI bus id; NUMA node unknown");
        return None;
    };
    match source {
        NumaSource::Sysfs { root } => sysfs_numa_node(root, &bus),
        #[cfg(feature = "hwloc")]
        NumaSource::Hwloc { xml } => hwloc::numa_node(xml.as_deref(), &bus),
    }
}

fn sysfs_numa_node(root: &std::path::Path, bus: &str) -> Option<u32> {
    let path = root.join("sys/bus/pci/devices").join(bus).join("numa_node");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "no NUMA node file");
            return None;
        }
    };
    match parse_numa_node(&text) {
        Ok(node) => node,
        Err(message) => {
            tracing::warn!(path = %path.display(), %message, "unreadable NUMA node; treating it as unknown");
            None
        }
    }
}

#[cfg(feature = "hwloc")]
mod hwloc {
    //! NUMA lookup through hwloc: the nodeset of the device's first non-I/O ancestor.
    use hwlocality::Topology;
    use hwlocality::topology::builder::TypeFilter;
    use std::path::Path;

    fn build(xml: Option<&Path>) -> Result<Topology, String> {
        let mut builder = Topology::builder();
        if let Some(path) = xml {
            // Read the file here: hwlocality panics on some file errors it does
            // not expect (e.g. ENOENT), whereas a buffer only fails with EINVAL.
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            builder = builder.from_xml(&text).map_err(|e| e.to_string())?;
        }
        builder
            .with_io_type_filter(TypeFilter::KeepAll)
            .map_err(|e| e.to_string())?
            .build()
            .map_err(|e| e.to_string())
    }

    /// The single NUMA node the device hangs off; `None` when hwloc attaches it
    /// to a level spanning several nodes (e.g. Machine on a multi-node box).
    pub(super) fn numa_node(xml: Option<&Path>, bus: &str) -> Option<u32> {
        let topology = match build(xml) {
            Ok(t) => t,
            Err(message) => {
                tracing::warn!(%message, "cannot build the hwloc topology; NUMA node unknown");
                return None;
            }
        };
        let device = topology.pci_device_by_bus_id_string(bus).ok().flatten()?;
        let ancestor = device.first_non_io_ancestor()?;
        let nodeset = ancestor.nodeset()?;
        if nodeset.weight() != Some(1) {
            tracing::debug!(
                bus,
                ancestor = ?ancestor.object_type(),
                "device is not attached to a single NUMA node"
            );
            return None;
        }
        let node = nodeset.first_set()?;
        u32::try_from(usize::from(node)).ok()
    }
}

#[cfg(test)]
#[path = "numa_tests.rs"]
mod tests;
