//! The NVML backend against the fake driver (`tests/fake-nvml`): its inventory
//! equals the simulated backend's for the same node file, and driver failures
//! give clean errors. Each scenario runs in its own child process (`child_*`).

mod nvml_support;

use gpu_device_plugin::gpu::nvml::{Nvml, NvmlOptions};
use gpu_device_plugin::gpu::simulated::Simulated;
use gpu_device_plugin::gpu::{Backend, GpuError};
use nvml_support::{Paths, Stage, driver_mig_minors, run_child};

const NODES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/nodes");

fn node_text(name: &str) -> String {
    std::fs::read_to_string(format!("{NODES}/{name}")).unwrap()
}

fn simulated(paths: &Paths) -> gpu_device_plugin::gpu::Inventory {
    Simulated::from_file(paths.node()).inventory().unwrap()
}

#[test]
fn inventory_matches_the_simulated_backend_for_every_node_file() {
    let mut files: Vec<_> = std::fs::read_dir(NODES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let stage = Stage::new(&std::fs::read_to_string(&file).unwrap());
        run_child(
            "child_inventory_matches_simulated",
            &stage,
            &[("NODE_NAME", &file.display().to_string())],
        );
    }
}

#[test]
#[ignore = "child process of inventory_matches_the_simulated_backend_for_every_node_file"]
fn child_inventory_matches_simulated() {
    let paths = Paths::from_env();
    let nvml = Nvml::new(paths.options()).unwrap();
    assert_eq!(nvml.inventory().unwrap(), simulated(&paths));
}

#[test]
fn a_missing_library_is_a_clean_init_error() {
    let opts = NvmlOptions {
        lib_path: Some("/nonexistent/libnvidia-ml.so.1".into()),
        ..NvmlOptions::default()
    };
    let Err(GpuError::NvmlInit(message)) = Nvml::new(opts) else {
        panic!("loading a missing library must fail with NvmlInit");
    };
    assert!(
        message.contains("/nonexistent/libnvidia-ml.so.1"),
        "{message}"
    );
}

#[test]
fn driver_init_failures_are_clean_init_errors() {
    let cases = [("18", "version mismatch"), ("9", "driver is not loaded")];
    for (code, text) in cases {
        let stage = Stage::new(&node_text("workstation.yaml"));
        run_child(
            "child_init_fails",
            &stage,
            &[("FAKE_NVML_INIT_ERROR", code), ("EXPECT", text)],
        );
    }
}

#[test]
#[ignore = "child process of driver_init_failures_are_clean_init_errors"]
fn child_init_fails() {
    let expect = std::env::var("EXPECT").unwrap();
    match Nvml::new(Paths::from_env().options()) {
        Err(err @ GpuError::NvmlInit(_)) => {
            let message = err.to_string();
            assert!(
                message.starts_with("failed to initialize NVML"),
                "{message}"
            );
            assert!(message.contains(&expect), "{message}");
        }
        other => panic!("expected NvmlInit, got {other:?}"),
    }
}

#[test]
fn a_lost_gpu_fails_the_inventory_naming_it() {
    let stage = Stage::new(&node_text("dgx-a100.yaml"));
    run_child("child_lost_gpu", &stage, &[("FAKE_NVML_LOST_GPU", "3")]);
}

#[test]
#[ignore = "child process of a_lost_gpu_fails_the_inventory_naming_it"]
fn child_lost_gpu() {
    let nvml = Nvml::new(Paths::from_env().options()).unwrap();
    match nvml.inventory() {
        Err(GpuError::Nvml(message)) => {
            assert!(message.starts_with("GPU 3:"), "{message}");
            assert!(message.contains("fell off the bus"), "{message}");
        }
        other => panic!("expected an NVML error, got {other:?}"),
    }
}

#[test]
fn an_unreadable_memory_size_is_reported_as_zero() {
    let stage = Stage::new(&node_text("dgx-a100.yaml"));
    let env = [
        ("FAKE_NVML_LOST_GPU", "2"),
        ("FAKE_NVML_LOST_CALL", "nvmlDeviceGetMemoryInfo_v2"),
    ];
    run_child("child_memory_zero", &stage, &env);
}

#[test]
#[ignore = "child process of an_unreadable_memory_size_is_reported_as_zero"]
fn child_memory_zero() {
    let paths = Paths::from_env();
    let nvml = Nvml::new(paths.options()).unwrap();
    let mut want = simulated(&paths);
    want.gpus[2].memory_mib = 0;
    assert_eq!(nvml.inventory().unwrap(), want);
}

#[test]
fn missing_mig_capability_entries_leave_cap_paths_empty() {
    let stage = Stage::new(&node_text("a100-mig-single.yaml"));
    let without_gpu0: String = driver_mig_minors()
        .lines()
        .filter(|l| !l.starts_with("gpu0/"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(stage.paths.mig_minors(), without_gpu0).unwrap();
    run_child("child_missing_caps", &stage, &[]);
}

#[test]
#[ignore = "child process of missing_mig_capability_entries_leave_cap_paths_empty"]
fn child_missing_caps() {
    let paths = Paths::from_env();
    let nvml = Nvml::new(paths.options()).unwrap();
    let mut want = simulated(&paths);
    for mig in &mut want.gpus[0].mig_devices {
        mig.cap_paths.clear();
    }
    assert!(!want.gpus[1].mig_devices[0].cap_paths.is_empty());
    assert_eq!(nvml.inventory().unwrap(), want);
}

#[test]
fn a_missing_mig_minors_file_leaves_cap_paths_empty() {
    let stage = Stage::new(&node_text("a100-mig-single.yaml"));
    std::fs::remove_file(stage.paths.mig_minors()).unwrap();
    run_child("child_no_minors_file", &stage, &[]);
}

#[test]
#[ignore = "child process of a_missing_mig_minors_file_leaves_cap_paths_empty"]
fn child_no_minors_file() {
    let paths = Paths::from_env();
    let nvml = Nvml::new(paths.options()).unwrap();
    let got = nvml.inventory().unwrap();
    let mut want = simulated(&paths);
    want.gpus
        .iter_mut()
        .flat_map(|g| &mut g.mig_devices)
        .for_each(|m| m.cap_paths.clear());
    assert_eq!(got, want);
}
