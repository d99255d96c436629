//! Tests of `numa` (tables of cases).
use super::*;
use std::path::Path;

#[test]
fn bus_ids_normalise_to_the_sysfs_form() {
    let cases = [
        ("00000000:07:00.0", Some("0000:07:00.0")),
        ("00000000:B7:00.0", Some("0000:b7:00.0")),
        ("00000000:07:00.0\0\0\0", Some("0000:07:00.0")),
        ("0000:3b:00.0", Some("0000:3b:00.0")),
        ("0000:3B:00.0\n", Some("0000:3b:00.0")),
        ("00000001:07:00.0", Some("0001:07:00.0")),
        ("12340000:07:00.0", None),
        ("07:00.0", Some("0000:07:00.0")),
        ("0001:07:00.1", Some("0001:07:00.1")),
        ("", None),
        ("0000:07:00", None),
        ("0000:07:00.8", None),
        ("../../etc:00.0", None),
        ("0000:zz:00.0", None),
        ("000:07:00.0", None),
    ];
    for (input, want) in cases {
        assert_eq!(normalize_pci_bus_id(input).as_deref(), want, "{input:?}");
    }
}

#[test]
fn numa_node_file_contents_are_interpreted_like_nvidia() {
    let cases = [
        ("0\n", Ok(Some(0))),
        ("1", Ok(Some(1))),
        ("  3 \n", Ok(Some(3))),
        ("-1\n", Ok(None)),
        ("-7", Ok(None)),
        ("", Err(())),
        ("node0", Err(())),
        ("99999999999", Err(())),
    ];
    for (text, want) in cases {
        assert_eq!(parse_numa_node(text).map_err(|_| ()), want, "{text:?}");
    }
}

fn write_numa(root: &Path, bus: &str, content: &str) {
    let dir = root.join("sys/bus/pci/devices").join(bus);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("numa_node"), content).unwrap();
}

#[test]
fn sysfs_lookup_reads_the_device_numa_node_file() {
    let root = tempfile::tempdir().unwrap();
    write_numa(root.path(), "0000:07:00.0", "0\n");
    write_numa(root.path(), "0000:87:00.0", "1\n");
    write_numa(root.path(), "0000:01:00.0", "-1\n");
    write_numa(root.path(), "0000:02:00.0", "garbage\n");
    let source = NumaSource::Sysfs {
        root: root.path().to_path_buf(),
    };
    let cases = [
        ("00000000:07:00.0", Some(0)),
        ("0000:07:00.0", Some(0)),
        ("00000000:87:00.0", Some(1)),
        ("00000000:01:00.0", None),
        ("00000000:02:00.0", None),
        ("00000000:09:00.0", None),
        ("not-a-bus-id", None),
    ];
    for (bus, want) in cases {
        assert_eq!(numa_node(&source, bus), want, "{bus}");
    }
}

#[test]
fn default_source_is_the_real_sysfs() {
    assert_eq!(
        NumaSource::default(),
        NumaSource::Sysfs {
            root: PathBuf::from("/")
        }
    );
}

#[cfg(feature = "hwloc")]
mod hwloc_fixture {
    use super::*;
    use hwlocality::Topology;
    use hwlocality::topology::export::xml::XMLExportFlags;

    fn pci_dev(gp_index: u32, bus: &str) -> String {
        format!(
            "<object type=\"PCIDev\" gp_index=\"{gp_index}\" pci_busid=\"{bus}\" \
             pci_type=\"0302 [10de:20b0] [10de:1450] a1\" pci_link_speed=\"0.000000\"/>\n"
        )
    }

    /// Two packages with one NUMA node each; GPU 0000:07 under package 0,
    /// 0000:87 under package 1 and 0000:01 directly under Machine. The PCI
    /// objects go last among their parent's children, as hwloc exports them.
    fn fixture(dir: &Path) -> PathBuf {
        let synthetic = Topology::builder()
            .from_synthetic("pack:2 [numa] core:1 pu:1")
            .unwrap()
            .build()
            .unwrap();
        let xml = synthetic
            .export_xml(XMLExportFlags::empty())
            .unwrap()
            .to_string();
        let mut out = String::new();
        let mut depth_of_package = Vec::new();
        let mut packages = 0;
        let mut depth = 0usize;
        for line in xml.lines() {
            let t = line.trim_start();
            if t == "</object>" {
                depth -= 1;
                if depth_of_package.last() == Some(&depth) {
                    depth_of_package.pop();
                    let bus = if packages == 1 {
                        "0000:07:00.0"
                    } else {
                        "0000:87:00.0"
                    };
                    out.push_str(&pci_dev(100 + packages, bus));
                } else if depth == 1 {
                    out.push_str(&pci_dev(200, "0000:01:00.0"));
                }
            } else if t.starts_with("<object ") && !t.ends_with("/>") {
                if t.starts_with("<object type=\"Package\"") {
                    depth_of_package.push(depth);
                    packages += 1;
                }
                depth += 1;
            } else if t.starts_with("<topology") {
                depth += 1;
            }
            out.push_str(line);
            out.push('\n');
        }
        assert_eq!(packages, 2, "synthetic export changed shape:\n{xml}");
        let path = dir.join("topology.xml");
        std::fs::write(&path, out).unwrap();
        path
    }

    #[test]
    fn hwloc_lookup_uses_the_first_non_io_ancestor_nodeset() {
        let dir = tempfile::tempdir().unwrap();
        let source = NumaSource::Hwloc {
            xml: Some(fixture(dir.path())),
        };
        let cases = [
            ("00000000:07:00.0", Some(0)),
            ("0000:87:00.0", Some(1)),
            // Attached to Machine on a two-node box: unknown, like sysfs -1.
            ("00000000:01:00.0", None),
            ("00000000:09:00.0", None),
        ];
        for (bus, want) in cases {
            assert_eq!(numa_node(&source, bus), want, "{bus}");
        }
    }

    #[test]
    fn hwloc_lookup_with_an_unreadable_xml_is_unknown() {
        let source = NumaSource::Hwloc {
            xml: Some(PathBuf::from("/nonexistent/topology.xml")),
        };
        assert_eq!(numa_node(&source, "0000:07:00.0"), None);
    }
}
