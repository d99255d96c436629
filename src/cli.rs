//! Flags and env vars (NVIDIA's names, reference §1.2 and §2), logging set-up,
//! signals, and dispatch to the daemon or a subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use devkit::bench::{BenchOptions, render_line, run_bench};
use devkit::demo::{DemoOptions, render, run_demo};
use gpu_device_plugin::config::Overrides;
use gpu_device_plugin::daemon::{BackendChoice, DaemonConfig, HealthOptions, run};
use gpu_device_plugin::gpu::simulated::Simulated;
use gpu_device_plugin::inspect::{inspect, render_json, render_table};
use gpu_device_plugin::kubelet::DEFAULT_KUBELET_SOCKET;
use gpu_device_plugin::usage::UsageOptions;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

#[derive(Parser, Debug)]
#[command(
    name = "gpu-device-plugin",
    version,
    about = "Kubernetes device plugin for NVIDIA GPUs (drop-in for NVIDIA's k8s-device-plugin)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    flags: Flags,
    /// Use a simulated node described in FILE instead of NVML.
    #[arg(long, env = "GPU_SIMULATE", global = true, value_name = "FILE")]
    simulate: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"], global = true)]
    log_format: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the plugin on a simulated node against an in-process kubelet and
    /// print what the kubelet sees (no GPU, no cluster needed).
    Demo,
    /// Validate a config file and print what it would advertise on a node
    /// (the --simulate node, or the built-in one). Exit 1 listing every error.
    CheckConfig {
        /// The NVIDIA v1 config file (YAML or JSON).
        file: PathBuf,
    },
    /// Dial every device-plugin socket next to --kubelet-socket and print its
    /// options and devices (and an Allocate response with --allocate).
    Inspect(InspectArgs),
    /// Measure latencies, start-up and footprint on a simulated node; prints
    /// one JSON line per figure.
    Bench(BenchArgs),
    /// Run one MPS control daemon per resource shared with MPS (same config
    /// file, env and flags as the plugin), and write the markers it waits for.
    MpsControlDaemon(MpsArgs),
    /// CDI spec files (for the cdi-annotations and cdi-cri strategies).
    #[command(subcommand)]
    Cdi(CdiCommand),
}

#[derive(Subcommand, Debug)]
enum CdiCommand {
    /// Write this node's CDI specs once (the --simulate node, or NVML) and
    /// print their paths. Searches --driver-root-ctr-path, or --driver-root
    /// itself when that is not given (a run on the host).
    Generate {
        /// Directory to write to (default --cdi-root, /var/run/cdi).
        #[arg(long, value_name = "DIR")]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct MpsArgs {
    /// The MPS control binary (a name is looked up on PATH).
    #[arg(
        long,
        env = "MPS_CONTROL_BIN",
        default_value = "nvidia-cuda-mps-control"
    )]
    mps_control_bin: PathBuf,
    /// nvidia-smi, used to set the compute mode (a name is looked up on PATH).
    #[arg(long, env = "NVIDIA_SMI_BIN", default_value = "nvidia-smi")]
    nvidia_smi_bin: PathBuf,
    /// How often each control daemon is asked a harmless query; no answer = dead.
    #[arg(long, env = "MPS_HEALTH_INTERVAL", default_value = "5s", value_parser = required_duration)]
    mps_health_interval: std::time::Duration,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Seconds to measure the spawned daemon's idle CPU and memory.
    #[arg(long, default_value_t = 30)]
    idle_seconds: u64,
}

#[derive(Args, Debug)]
struct InspectArgs {
    /// Output format.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    output: String,
    /// Also call Allocate for these device IDs on the socket advertising them.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    allocate: Vec<String>,
    /// Also show which pod, namespace and container holds each device (the
    /// kubelet's PodResources API at --pod-resources-socket).
    #[arg(long)]
    pods: bool,
}

/// NVIDIA's flags; each also reads its env var. `None` = not given.
#[derive(Args, Debug)]
struct Flags {
    /// MIG strategy: none, single or mixed.
    #[arg(long, env = "MIG_STRATEGY", global = true)]
    mig_strategy: Option<String>,
    /// Fail if GPU discovery fails (true) or keep running with nothing advertised (false).
    #[arg(long, env = "FAIL_ON_INIT_ERROR", value_parser = go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", global = true)]
    fail_on_init_error: Option<bool>,
    /// Pass the device nodes in the Allocate response (DeviceSpecs).
    #[arg(long, env = "PASS_DEVICE_SPECS", value_parser = go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", global = true)]
    pass_device_specs: Option<bool>,
    /// How devices are passed to the runtime: envvar, volume-mounts (comma-separated).
    #[arg(
        long,
        env = "DEVICE_LIST_STRATEGY",
        value_delimiter = ',',
        global = true
    )]
    device_list_strategy: Option<Vec<String>>,
    /// Device IDs in NVIDIA_VISIBLE_DEVICES: uuid or index.
    #[arg(long, env = "DEVICE_ID_STRATEGY", global = true)]
    device_id_strategy: Option<String>,
    /// Host path of the NVIDIA driver root.
    #[arg(
        long,
        alias = "nvidia-driver-root",
        env = "NVIDIA_DRIVER_ROOT",
        global = true
    )]
    driver_root: Option<String>,
    /// Host path prefix of device nodes (defaults to the driver root).
    #[arg(
        long,
        alias = "nvidia-dev-root",
        env = "NVIDIA_DEV_ROOT",
        global = true
    )]
    dev_root: Option<String>,
    /// Where the driver root is mounted in this container (also CONTAINER_DRIVER_ROOT).
    #[arg(
        long,
        alias = "container-driver-root",
        env = "DRIVER_ROOT_CTR_PATH",
        global = true
    )]
    driver_root_ctr_path: Option<String>,
    /// Root of the MPS daemon's directories on the host.
    #[arg(long, env = "MPS_ROOT", global = true)]
    mps_root: Option<String>,
    /// Where the host's MPS root is mounted in this container (markers, pipes, logs).
    #[arg(long, env = "MPS_ROOT_CTR_PATH", default_value = gpu_device_plugin::daemon::DEFAULT_MPS_CTR_ROOT, global = true)]
    mps_root_ctr_path: String,
    #[arg(long, env = "GDRCOPY_ENABLED", value_parser = go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", global = true)]
    gdrcopy_enabled: Option<bool>,
    #[arg(long, env = "GDS_ENABLED", value_parser = go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", global = true)]
    gds_enabled: Option<bool>,
    #[arg(long, env = "MOFED_ENABLED", value_parser = go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", global = true)]
    mofed_enabled: Option<bool>,
    /// auto or nvml.
    #[arg(long, env = "DEVICE_DISCOVERY_STRATEGY", global = true)]
    device_discovery_strategy: Option<String>,
    /// distributed or packed: how replicas and MIG devices are preferred.
    #[arg(long, env = "SHARED_DEVICES_ALLOCATION_POLICY", global = true)]
    shared_devices_allocation_policy: Option<String>,
    #[arg(long, env = "CDI_ANNOTATION_PREFIX", global = true)]
    cdi_annotation_prefix: Option<String>,
    #[arg(
        long,
        alias = "nvidia-ctk-path",
        env = "NVIDIA_CDI_HOOK_PATH",
        global = true
    )]
    nvidia_cdi_hook_path: Option<String>,
    /// Directory of the CDI spec files.
    #[arg(long, env = "CDI_ROOT", global = true)]
    cdi_root: Option<String>,
    /// CDI hooks to leave out of the spec (comma-separated; `all` = every hook).
    #[arg(long, env = "CDI_DISABLE_HOOKS", value_delimiter = ',', global = true)]
    cdi_disable_hooks: Option<Vec<String>>,
    /// nvcdi feature flags (comma-separated): no-additional-gids-for-device-nodes, disable-ipc-discoverer.
    #[arg(long, env = "CDI_FEATURE_FLAGS", value_delimiter = ',', global = true)]
    cdi_feature_flags: Option<Vec<String>>,
    /// Path of the kubelet registration socket; plugin sockets go next to it.
    #[arg(long, env = "KUBELET_SOCKET", default_value = DEFAULT_KUBELET_SOCKET, global = true)]
    kubelet_socket: PathBuf,
    /// NVIDIA v1 config file (YAML or JSON).
    #[arg(long, env = "CONFIG_FILE", global = true)]
    config_file: Option<PathBuf>,
    /// A device marked unhealthy by a critical event is healthy again after
    /// this long without another one (Go duration, e.g. 5m); `never` keeps it
    /// unhealthy until a restart, as NVIDIA's plugin does.
    #[arg(long, env = "HEALTH_RECOVERY_PERIOD", default_value = "5m", value_parser = optional_duration, global = true)]
    health_recovery_period: OptionalDuration,
    /// Root under which sysfs is read for NUMA nodes (`<root>/sys/bus/pci/...`).
    #[arg(long, env = "SYSFS_ROOT", default_value = "/", global = true)]
    sysfs_root: PathBuf,
    /// Where NUMA nodes come from: `sysfs`, or `hwloc` (builds with the hwloc feature).
    #[arg(long, env = "NUMA_SOURCE", default_value = "sysfs", value_parser = ["sysfs", "hwloc"], global = true)]
    numa_source: String,
    /// How often NVML is asked whether GPUs or MIG devices changed (Go
    /// duration); `never` turns it off.
    #[arg(long, env = "RESCAN_INTERVAL", default_value = "30s", value_parser = optional_duration, global = true)]
    rescan_interval: OptionalDuration,
    /// Serve /metrics, /healthz and /readyz on this address (`:2112` = all interfaces).
    #[arg(long, env = "METRICS_ADDRESS", global = true)]
    metrics_address: Option<String>,
    /// How often each served GPU and MIG device's usage is sampled and the
    /// kubelet's PodResources listed (Go duration, e.g. 15s, 200ms); `never`
    /// turns usage metrics off.
    #[arg(long, env = "USAGE_INTERVAL", default_value = "15s", value_parser = optional_duration, global = true)]
    usage_interval: OptionalDuration,
    /// Also export usage under DCGM exporter's default metric names and labels.
    #[arg(long, env = "DCGM_COMPATIBLE_METRICS", value_parser = go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", global = true)]
    dcgm_compatible_metrics: bool,
    /// The kubelet's PodResources socket (who holds which device).
    #[arg(long, env = "POD_RESOURCES_SOCKET", default_value = gpu_device_plugin::usage::DEFAULT_POD_RESOURCES_SOCKET, global = true)]
    pod_resources_socket: PathBuf,
}

/// A duration, or none (`never`, `off`, `0`).
#[derive(Debug, Clone, Copy)]
struct OptionalDuration(Option<std::time::Duration>);

fn optional_duration(s: &str) -> Result<OptionalDuration, String> {
    if matches!(s, "never" | "off" | "0") {
        return Ok(OptionalDuration(None));
    }
    let d = gpu_device_plugin::config::v1::Duration::parse(s)?;
    match d.to_std() {
        Some(d) if !d.is_zero() => Ok(OptionalDuration(Some(d))),
        _ => Ok(OptionalDuration(None)),
    }
}

/// A positive duration (Go syntax, e.g. `5s`, `200ms`).
fn required_duration(s: &str) -> Result<std::time::Duration, String> {
    match optional_duration(s)?.0 {
        Some(d) => Ok(d),
        None => Err(format!("{s:?} is not a positive duration")),
    }
}

/// Go's strconv.ParseBool, as NVIDIA's flags use it.
fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        other => Err(format!("could not parse {other:?} as bool value")),
    }
}

impl Flags {
    fn overrides(&self) -> Overrides {
        let env = |name: &str| std::env::var(name).ok();
        Overrides {
            mig_strategy: self.mig_strategy.clone(),
            fail_on_init_error: self.fail_on_init_error,
            pass_device_specs: self.pass_device_specs,
            device_list_strategy: self
                .device_list_strategy
                .as_ref()
                .map(|v| v.iter().map(|s| s.trim().to_string()).collect()),
            device_id_strategy: self.device_id_strategy.clone(),
            driver_root: self.driver_root.clone(),
            dev_root: self.dev_root.clone(),
            container_driver_root: self
                .driver_root_ctr_path
                .clone()
                .or_else(|| env("CONTAINER_DRIVER_ROOT")),
            mps_root: self.mps_root.clone(),
            gdrcopy_enabled: self.gdrcopy_enabled,
            gds_enabled: self.gds_enabled,
            mofed_enabled: self.mofed_enabled,
            device_discovery_strategy: self.device_discovery_strategy.clone(),
            shared_devices_allocation_policy: self.shared_devices_allocation_policy.clone(),
            cdi_annotation_prefix: self.cdi_annotation_prefix.clone(),
            nvidia_cdi_hook_path: self
                .nvidia_cdi_hook_path
                .clone()
                .or_else(|| env("NVIDIA_CTK_PATH")),
            cdi_root: self.cdi_root.clone(),
            cdi_disable_hooks: self.cdi_disable_hooks.clone(),
            cdi_feature_flags: self.cdi_feature_flags.clone(),
        }
    }
}

fn init_logging(format: &str, default_level: &str) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // RUST_LOG takes `level` or `target=level` lists (no regexes: a smaller binary).
    let filter: Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| s.parse().ok())
        .or_else(|| default_level.parse().ok())
        .unwrap_or_default();
    let registry = tracing_subscriber::registry().with(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if format == "json" {
        registry.with(fmt.json()).init();
    } else {
        registry.with(fmt).init();
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints a report; only warnings and errors go to the log there.
    let level = match cli.command {
        None | Some(Command::MpsControlDaemon(_)) => "info",
        Some(_) => "warn",
    };
    init_logging(&cli.log_format, level);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Our error texts already carry their causes: print the outer one.
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let overrides = cli.flags.overrides();
    match cli.command {
        Some(Command::Demo) => {
            let report = run_demo(DemoOptions {
                node: cli.simulate,
                config_file: cli.flags.config_file,
                overrides,
            })
            .await?;
            print!("{}", render(&report));
            Ok(())
        }
        Some(Command::CheckConfig { file }) => {
            check_config_command(&file, cli.simulate, &overrides)
        }
        Some(Command::Cdi(CdiCommand::Generate { output })) => {
            let backend = backend_choice(cli.simulate, &cli.flags)?;
            crate::cdi_command::generate(
                backend,
                cli.flags.config_file.as_deref(),
                overrides,
                output,
            )
        }
        Some(Command::Bench(args)) => {
            let opts = BenchOptions {
                idle: std::time::Duration::from_secs(args.idle_seconds),
                exe: std::env::current_exe()?,
            };
            run_bench(&opts, &mut |line| println!("{}", render_line(&line))).await?;
            Ok(())
        }
        Some(Command::Inspect(args)) => {
            let pod_resources = args
                .pods
                .then_some(cli.flags.pod_resources_socket.as_path());
            let found = inspect(&cli.flags.kubelet_socket, &args.allocate, pod_resources).await?;
            match args.output.as_str() {
                "json" => println!("{}", render_json(&found)),
                _ => print!("{}", render_table(&found)),
            }
            anyhow::ensure!(
                !found.has_problems(),
                "some sockets, Allocate calls or IDs had problems (shown above)"
            );
            Ok(())
        }
        Some(Command::MpsControlDaemon(args)) => {
            let backend = backend_choice(cli.simulate, &cli.flags)?;
            let opts = gpu_device_plugin::mps::MpsOptions {
                overrides,
                config_file: cli.flags.config_file,
                backend,
                root: PathBuf::from(cli.flags.mps_root_ctr_path),
                control_bin: args.mps_control_bin,
                smi_bin: args.nvidia_smi_bin,
                health_interval: args.mps_health_interval,
            };
            gpu_device_plugin::mps::run(opts, stop_on_signal()?).await?;
            Ok(())
        }
        None => {
            let backend = backend_choice(cli.simulate, &cli.flags)?;
            let cfg = DaemonConfig {
                overrides,
                config_file: cli.flags.config_file,
                kubelet_socket: cli.flags.kubelet_socket,
                backend,
                health: HealthOptions {
                    disable: std::env::var("DP_DISABLE_HEALTHCHECKS").ok(),
                    enable: std::env::var("DP_ENABLE_HEALTHCHECKS").ok(),
                    recovery: cli.flags.health_recovery_period.0,
                    rescan: cli.flags.rescan_interval.0,
                    mps_marker_root: cli.flags.mps_root_ctr_path,
                },
                metrics_address: cli.flags.metrics_address,
                usage: UsageOptions {
                    interval: cli.flags.usage_interval.0,
                    dcgm_compatible: cli.flags.dcgm_compatible_metrics,
                    pod_resources_socket: cli.flags.pod_resources_socket,
                },
            };
            run(cfg, stop_on_signal()?).await?;
            Ok(())
        }
    }
}

fn backend_choice(simulate: Option<PathBuf>, flags: &Flags) -> anyhow::Result<BackendChoice> {
    Ok(match simulate {
        Some(path) => BackendChoice::Simulated(Simulated::from_file(path)),
        None => BackendChoice::Nvml(numa_source(&flags.numa_source, flags.sysfs_root.clone())?),
    })
}

/// A flag that becomes true on SIGTERM, SIGINT or SIGQUIT.
fn stop_on_signal() -> anyhow::Result<watch::Receiver<bool>> {
    let (stop, stop_rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = quit.recv() => {}
        }
        tracing::info!("stop signal received");
        let _ = stop.send(true);
    });
    Ok(stop_rx)
}

fn check_config_command(
    file: &std::path::Path,
    node: Option<PathBuf>,
    overrides: &Overrides,
) -> anyhow::Result<()> {
    use gpu_device_plugin::check_config::{check_config_file, render};
    use gpu_device_plugin::gpu::Backend;
    let (sim, node_name) = match node {
        Some(path) => (Simulated::from_file(&path), path.display().to_string()),
        None => (
            Simulated::builtin(),
            gpu_device_plugin::gpu::simulated::BUILTIN_NAME.to_string(),
        ),
    };
    let inventory = sim.inventory()?;
    let report = check_config_file(file, overrides, &inventory);
    print!(
        "{}",
        render(&file.display().to_string(), &node_name, &report)
    );
    if report.valid() {
        Ok(())
    } else {
        Err(anyhow::anyhow!("{} is invalid", file.display()))
    }
}

fn numa_source(
    name: &str,
    sysfs_root: PathBuf,
) -> anyhow::Result<gpu_device_plugin::numa::NumaSource> {
    use gpu_device_plugin::numa::NumaSource;
    match name {
        #[cfg(feature = "hwloc")]
        "hwloc" => Ok(NumaSource::Hwloc { xml: None }),
        #[cfg(not(feature = "hwloc"))]
        "hwloc" => Err(anyhow::anyhow!(
            "--numa-source hwloc needs a build with the hwloc feature (cargo build --features hwloc); use sysfs"
        )),
        _ => Ok(NumaSource::Sysfs { root: sysfs_root }),
    }
}
