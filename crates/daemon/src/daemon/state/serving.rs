//! Serving one resource and keeping it registered (pure): its server is up
//! on a socket file we bound, down with a retry deadline, or being bound; it
//! registers exactly once per (kubelet socket, our socket) pair, only while
//! our socket is served, retrying a failed attempt with backoff.
//!
//! An attempt in flight is never abandoned for a newer kubelet socket: the
//! kubelet may already have accepted it. Its result says which kubelet
//! socket it actually reached (stat'ed right before dialing), and only then
//! is it decided whether another registration is needed.

use std::time::{Duration, Instant};

use super::timers::Backoff;
use crate::kubelet::SocketId;

/// Retry delays of a failed bind.
const BIND_RETRY_MIN: Duration = Duration::from_secs(1);
const BIND_RETRY_MAX: Duration = Duration::from_secs(30);
/// Retry delays of a failed registration. A kubelet socket that exists but
/// does not listen yet refuses connections for a moment only: retry within
/// milliseconds, then back off.
const REGISTER_RETRY_MIN: Duration = Duration::from_millis(2);
const REGISTER_RETRY_MAX: Duration = Duration::from_secs(5);
/// A failing registration is logged at warn at most this often.
pub const REGISTER_WARN_EVERY: Duration = Duration::from_secs(60);

/// The resource's gRPC server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    /// A bind was asked for and its result is not in yet.
    Binding,
    /// Serving on the socket file with this identity.
    Up(SocketId),
    /// The last bind failed; try again at `retry_at`.
    Down { retry_at: Instant, error: String },
}

/// One registration call in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub id: u64,
    pub kubelet: SocketId,
    pub server: SocketId,
}

/// Why a registration attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterFailure {
    /// The kubelet socket is missing or refuses connections: it is (re)starting.
    pub not_listening: bool,
    /// Our own socket file was no longer the one served (nothing was dialed);
    /// `observed` is what is at its path.
    pub socket_gone: bool,
    pub observed: Option<SocketId>,
    pub message: String,
}

impl RegisterFailure {
    /// A dial or Register call that failed.
    pub fn call(not_listening: bool, message: String) -> Self {
        RegisterFailure {
            not_listening,
            socket_gone: false,
            observed: None,
            message,
        }
    }

    /// Our socket at the endpoint path is not the one we serve.
    pub fn socket_gone(observed: Option<SocketId>) -> Self {
        RegisterFailure {
            not_listening: false,
            socket_gone: true,
            observed,
            message: "the plugin socket was deleted before registering".into(),
        }
    }
}

/// What the daemon knows about serving one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serving {
    /// Socket file name next to the kubelet socket.
    pub socket_name: String,
    pub server: Server,
    bind_backoff: Backoff,
    /// The (kubelet socket, our socket) pair the resource is registered for.
    pub registered: Option<(SocketId, SocketId)>,
    pub in_flight: Option<Attempt>,
    /// The kubelet socket the latest attempt targeted.
    last_target: Option<SocketId>,
    /// Earliest time of the next attempt after a failure.
    pub retry_at: Option<Instant>,
    register_backoff: Backoff,
    /// Failures since the last success.
    pub failures: u32,
    /// When a failure was last logged at warn.
    pub warned_at: Option<Instant>,
}

/// What the caller should do for a resource after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    Register(Attempt),
}

impl Serving {
    /// A resource that is about to be bound.
    pub fn new(socket_name: String) -> Self {
        Serving {
            socket_name,
            server: Server::Binding,
            bind_backoff: Backoff::new(BIND_RETRY_MIN, BIND_RETRY_MAX),
            registered: None,
            in_flight: None,
            last_target: None,
            retry_at: None,
            register_backoff: Backoff::new(REGISTER_RETRY_MIN, REGISTER_RETRY_MAX),
            failures: 0,
            warned_at: None,
        }
    }

    /// Our socket's identity while it is served.
    pub fn up(&self) -> Option<SocketId> {
        match self.server {
            Server::Up(id) => Some(id),
            _ => None,
        }
    }

    /// Registered with the kubelet whose socket is `kubelet`, on the socket we serve now.
    pub fn is_registered_with(&self, kubelet: Option<SocketId>) -> bool {
        matches!((kubelet, self.up(), self.registered), (Some(k), Some(s), Some(r)) if r == (k, s))
    }

    /// The bind result.
    pub fn bound(&mut self, result: Result<SocketId, String>, now: Instant) {
        match result {
            Ok(id) => {
                self.server = Server::Up(id);
                self.bind_backoff.reset();
            }
            Err(error) => {
                self.server = Server::Down {
                    retry_at: now + self.bind_backoff.next_delay(),
                    error,
                };
            }
        }
    }

    /// Whether the socket file now at our path (`observed`) is not the one we
    /// serve, so the server must be bound again. Only meaningful while up.
    pub fn lost_socket(&self, observed: Option<SocketId>) -> bool {
        matches!(self.server, Server::Up(id) if observed != Some(id))
    }

    /// A bind is due: the server is down and its retry time has come.
    pub fn bind_due(&self, now: Instant) -> bool {
        matches!(&self.server, Server::Down { retry_at, .. } if *retry_at <= now)
    }

    /// Decides whether to register now with the kubelet socket `kubelet`.
    pub fn decide(&self, kubelet: Option<SocketId>, now: Instant, next_id: u64) -> Action {
        let (Some(k), Some(s)) = (kubelet, self.up()) else {
            return Action::Nothing;
        };
        if self.registered == Some((k, s)) || self.in_flight.is_some() {
            return Action::Nothing;
        }
        if self.retry_at.is_some_and(|at| at > now) {
            return Action::Nothing;
        }
        // (A due `retry_at` is consumed by `started`.)
        Action::Register(Attempt {
            id: next_id,
            kubelet: k,
            server: s,
        })
    }

    /// An attempt was started.
    pub fn started(&mut self, attempt: Attempt) {
        if self.last_target.is_some_and(|k| k != attempt.kubelet) {
            // A new kubelet: its first refusals are expected, retry fast again.
            self.register_backoff.reset();
        }
        self.last_target = Some(attempt.kubelet);
        self.in_flight = Some(attempt);
        self.retry_at = None;
    }

    /// A registration attempt ended, having dialed the kubelet socket
    /// `reached` (`None` when there was none). Returns true when it is the
    /// current attempt (another attempt's result is ignored).
    pub fn finished(
        &mut self,
        attempt_id: u64,
        reached: Option<SocketId>,
        result: &Result<(), RegisterFailure>,
        now: Instant,
    ) -> bool {
        let Some(attempt) = self.in_flight.filter(|a| a.id == attempt_id) else {
            return false;
        };
        self.in_flight = None;
        match result {
            Ok(()) => {
                self.registered = Some((reached.unwrap_or(attempt.kubelet), attempt.server));
                self.register_backoff.reset();
                self.failures = 0;
                self.warned_at = None;
            }
            Err(f) if f.socket_gone => {}
            Err(_) => {
                self.failures += 1;
                self.retry_at = Some(now + self.register_backoff.next_delay());
            }
        }
        true
    }

    /// Whether a failure at `now` should be logged at warn: the first of a
    /// streak that is not a (re)starting kubelet, then once a minute.
    pub fn should_warn(&mut self, failure: &RegisterFailure, now: Instant) -> bool {
        let quiet_start = failure.not_listening && self.failures < 10;
        let due = self
            .warned_at
            .is_none_or(|at| now.duration_since(at) >= REGISTER_WARN_EVERY);
        let warn = !quiet_start && due;
        if warn {
            self.warned_at = Some(now);
        }
        warn
    }

    /// Forgets a registration retry time that has passed (so that a retry
    /// that cannot happen yet, kubelet absent, leaves no deadline behind).
    pub fn expire_retry(&mut self, now: Instant) {
        if self.retry_at.is_some_and(|at| at <= now) {
            self.retry_at = None;
        }
    }

    /// The earliest deadline this resource waits for.
    pub fn next_deadline(&self) -> Option<Instant> {
        let bind = match &self.server {
            Server::Down { retry_at, .. } => Some(*retry_at),
            _ => None,
        };
        let register = self.retry_at.filter(|_| self.in_flight.is_none());
        [bind, register].into_iter().flatten().min()
    }
}
