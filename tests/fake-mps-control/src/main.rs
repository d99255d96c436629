//! A fake `nvidia-cuda-mps-control` for the e2e tests, std only.
//!
//! - `-d`: fails while `<pipe>/../fake-refuse-start` exists; else starts a background server (this binary with `--serve`) on a Unix
//!   socket in `$CUDA_MPS_PIPE_DIRECTORY`, waits until it accepts, exits 0.
//! - no argument: sends stdin (one command) to the server and prints the
//!   answer; exit 1 when no server answers, as the real client does.
//! - `--serve`: the server; writes its pid to `<pipe>/fake-server.pid` (kill
//!   it to make the daemon "die"); records `start …` and every command it
//!   receives in `<pipe>/../fake-mps-commands.log`; `quit` ends it.
//! - `-i <uuid> -c <mode>`: plays `nvidia-smi`, appending its arguments to
//!   `$FAKE_NVIDIA_SMI_LOG` when that is set.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const SOCKET: &str = "fake-control.sock";
const MAX_COMMAND: u64 = 4096;

fn pipe_dir() -> Option<PathBuf> {
    std::env::var_os("CUDA_MPS_PIPE_DIRECTORY").map(PathBuf::from)
}

fn record(pipe: &std::path::Path, line: &str) {
    let log = pipe.parent().unwrap_or(pipe).join("fake-mps-commands.log");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("-i") => smi(&args),
        Some("-d") => start(),
        Some("--serve") => serve(),
        _ => client(),
    }
}

fn smi(args: &[String]) -> ExitCode {
    if let Some(log) = std::env::var_os("FAKE_NVIDIA_SMI_LOG")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
    {
        let _ = writeln!(f, "nvidia-smi {}", args.join(" "));
    }
    ExitCode::SUCCESS
}

fn start() -> ExitCode {
    let Some(pipe) = pipe_dir() else {
        return ExitCode::FAILURE;
    };
    // Told to stay dead: a `fake-refuse-start` file next to the pipe directory.
    if pipe
        .parent()
        .is_some_and(|d| d.join("fake-refuse-start").exists())
    {
        return ExitCode::FAILURE;
    }
    let Ok(exe) = std::env::current_exe() else {
        return ExitCode::FAILURE;
    };
    let spawned = Command::new(exe)
        .arg("--serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if spawned.is_err() {
        return ExitCode::FAILURE;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if UnixStream::connect(pipe.join(SOCKET)).is_ok() {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    ExitCode::FAILURE
}

fn serve() -> ExitCode {
    let Some(pipe) = pipe_dir() else {
        return ExitCode::FAILURE;
    };
    let socket = pipe.join(SOCKET);
    let _ = std::fs::remove_file(&socket);
    let Ok(listener) = UnixListener::bind(&socket) else {
        return ExitCode::FAILURE;
    };
    let _ = std::fs::write(pipe.join("fake-server.pid"), std::process::id().to_string());
    // A test that failed half-way leaves no server behind: its temp directory goes.
    let watched = pipe.clone();
    std::thread::spawn(move || {
        while watched.is_dir() {
            std::thread::sleep(Duration::from_millis(200));
        }
        std::process::exit(0);
    });
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_default();
    record(&pipe, &format!("start CUDA_VISIBLE_DEVICES={visible}"));
    let mut percentage = String::from("100.0");
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut command = String::new();
        let _ = (&mut stream).take(MAX_COMMAND).read_to_string(&mut command);
        let command = command.trim().to_string();
        // An empty command is `-d` checking that the server accepts.
        if command.is_empty() {
            continue;
        }
        if command == "get_default_active_thread_percentage" {
            let _ = writeln!(stream, "{percentage}");
            continue;
        }
        record(&pipe, &command);
        if let Some(v) = command.strip_prefix("set_default_active_thread_percentage ") {
            percentage = format!("{v}.0");
        }
        if command == "quit" {
            let _ = std::fs::remove_file(&socket);
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::SUCCESS
}

fn client() -> ExitCode {
    let Some(pipe) = pipe_dir() else {
        return ExitCode::FAILURE;
    };
    let mut command = String::new();
    let _ = std::io::stdin()
        .take(MAX_COMMAND)
        .read_to_string(&mut command);
    let Ok(mut stream) = UnixStream::connect(pipe.join(SOCKET)) else {
        return ExitCode::FAILURE;
    };
    if stream.write_all(command.as_bytes()).is_err() {
        return ExitCode::FAILURE;
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = String::new();
    let _ = stream.take(MAX_COMMAND).read_to_string(&mut answer);
    print!("{answer}");
    ExitCode::SUCCESS
}
