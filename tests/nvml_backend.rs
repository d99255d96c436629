//! The NVML backend against the fake driver (`tests/fake-nvml`): its inventory
//! equals the simulated backend's for the same node file (faults included),
//! a failure of any per-GPU call faults that GPU alone, and driver failures
//! give clean errors. Each scenario runs in its own child process (`child_*`).

mod nvml_support;

use gpu_device_plugin::gpu::nvml::{Nvml, NvmlOptions};
use gpu_device_plugin::gpu::simulated::{Simulated, parse_node};
use gpu_device_plugin::gpu::{Backend, FaultKind, Gpu, GpuError, GpuFault, RecoveryAction};
use nvml_support::{Paths, Stage, driver_mig_minors, run_child, with_keys};

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

/// GPU `index` of `name` left out as lost, as the simulated backend reads
/// `lost: true` on it: the GPUs the NVML inventory must still report.
fn without_gpu(name: &str, index: u32) -> Vec<Gpu> {
    let text = with_keys(&node_text(name), index, &["lost: true"]);
    parse_node(&text, name).unwrap().inventory.gpus
}

#[test]
fn a_lost_gpu_is_a_fault_and_the_others_are_reported() {
    let stage = Stage::new(&node_text("dgx-a100.yaml"));
    run_child("child_lost_gpu", &stage, &[("FAKE_NVML_LOST_GPU", "3")]);
}

#[test]
#[ignore = "child process of a_lost_gpu_is_a_fault_and_the_others_are_reported"]
fn child_lost_gpu() {
    let nvml = Nvml::new(Paths::from_env().options()).unwrap();
    let inventory = nvml.inventory().unwrap();
    let lost = GpuFault {
        index: 3,
        uuid: None,
        kind: FaultKind::Lost,
    };
    assert_eq!(inventory.faults, [lost]);
    // The others, without their NVLinks to GPU 3.
    assert_eq!(inventory.gpus, without_gpu("dgx-a100.yaml", 3));
}

/// Every per-GPU call of the inventory, the node that makes it, and whether
/// the GPU's UUID is read before it.
const CALLS: [(&str, &str, bool); 19] = [
    ("nvmlDeviceGetHandleByIndex_v2", "dgx-a100.yaml", false),
    ("nvmlDeviceGetUUID", "dgx-a100.yaml", false),
    ("nvmlDeviceGetName", "dgx-a100.yaml", true),
    ("nvmlDeviceGetMemoryInfo_v2", "dgx-a100.yaml", true),
    ("nvmlDeviceGetPciInfo_v3", "dgx-a100.yaml", true),
    ("nvmlDeviceGetMinorNumber", "dgx-a100.yaml", true),
    ("nvmlDeviceGetCudaComputeCapability", "dgx-a100.yaml", true),
    ("nvmlDeviceGetMigMode", "dgx-a100.yaml", true),
    ("nvmlDeviceGetNvLinkState", "dgx-a100.yaml", true),
    ("nvmlDeviceGetNvLinkRemotePciInfo_v2", "dgx-a100.yaml", true),
    ("nvmlDeviceGetFieldValues", "dgx-a100.yaml", true),
    (
        "nvmlDeviceGetMaxMigDeviceCount",
        "a100-mig-single.yaml",
        true,
    ),
    (
        "nvmlDeviceGetMigDeviceHandleByIndex",
        "a100-mig-single.yaml",
        true,
    ),
    ("nvmlDeviceGetGpuInstanceId", "a100-mig-single.yaml", true),
    (
        "nvmlDeviceGetComputeInstanceId",
        "a100-mig-single.yaml",
        true,
    ),
    ("nvmlDeviceGetAttributes_v2", "a100-mig-single.yaml", true),
    ("nvmlDeviceGetGpuInstanceById", "a100-mig-single.yaml", true),
    ("nvmlGpuInstanceGetInfo", "a100-mig-single.yaml", true),
    (
        "nvmlDeviceGetGpuInstanceProfileInfo",
        "a100-mig-single.yaml",
        true,
    ),
];

#[test]
fn any_per_gpu_call_failing_faults_that_gpu_only() {
    // GPU_IS_LOST, RESET_REQUIRED, UNKNOWN: per GPU; DRIVER_NOT_LOADED: NVML itself.
    for code in ["15", "16", "999", "9"] {
        for (call, node, uuid_read) in CALLS {
            let stage = Stage::new(&node_text(node));
            let env = [
                ("FAKE_NVML_LOST_GPU", "1"),
                ("FAKE_NVML_LOST_CALL", call),
                ("FAKE_NVML_LOST_CODE", code),
                ("NODE_NAME", node),
                ("UUID_READ", if uuid_read { "yes" } else { "no" }),
            ];
            run_child("child_call_fails", &stage, &env);
        }
    }
}

#[test]
#[ignore = "child process of any_per_gpu_call_failing_faults_that_gpu_only"]
fn child_call_fails() {
    let env = |name: &str| std::env::var(name).unwrap();
    let (call, code, node) = (
        env("FAKE_NVML_LOST_CALL"),
        env("FAKE_NVML_LOST_CODE"),
        env("NODE_NAME"),
    );
    let paths = Paths::from_env();
    let nvml = Nvml::new(paths.options()).unwrap();
    let result = nvml.inventory();
    // The function's name without its `_v<N>` suffix, as messages name it.
    let stem = call.trim_end_matches(|c: char| c == '_' || c == 'v' || c.is_ascii_digit());
    if code == "9" {
        let Err(GpuError::Nvml(message)) = result else {
            panic!("{call}: a driver that is not loaded fails the inventory, got {result:?}");
        };
        assert!(message.starts_with("GPU 1: "), "{message}");
        assert!(message.contains(stem), "{message}");
        return;
    }
    let inventory = result.unwrap_or_else(|e| panic!("{call}: {e}"));
    let uuid = simulated(&paths).gpus[1].uuid.clone();
    let [fault] = inventory.faults.as_slice() else {
        panic!("{call}: one fault expected, got {:?}", inventory.faults);
    };
    assert_eq!(fault.index, 1, "{call}");
    assert_eq!(
        fault.uuid,
        (env("UUID_READ") == "yes").then_some(uuid),
        "{call}"
    );
    match (code.as_str(), &fault.kind) {
        ("15", FaultKind::Lost) => {}
        ("16", FaultKind::NeedsRecovery(RecoveryAction::GpuReset)) => {}
        ("999", FaultKind::Failed(message)) => {
            assert!(
                message.contains(stem),
                "{call}: the message names the call: {message}"
            );
        }
        (_, kind) => panic!("{call}: code {code} gave {kind:?}"),
    }
    assert_eq!(
        inventory.gpus,
        without_gpu(&node, 1),
        "{call}: the others are reported"
    );
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
