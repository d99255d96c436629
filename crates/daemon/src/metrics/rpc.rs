//! Per-resource metric handles for the gRPC paths: resolved once when a
//! server starts, then each call costs two atomic adds and one histogram
//! observation (no label lookup, no allocation).

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

/// The measured RPCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Allocate,
    GetPreferredAllocation,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Allocate => "Allocate",
            Method::GetPreferredAllocation => "GetPreferredAllocation",
        }
    }
}

#[derive(Clone)]
struct Call {
    requests: Counter,
    errors: Counter,
    duration: Histogram,
}

/// The RPC-side metrics of one resource.
#[derive(Clone)]
pub struct RpcMetrics {
    allocate: Call,
    preferred: Call,
    streams: Gauge,
    /// Nudged after each Allocate (a non-blocking notify).
    usage: Option<crate::usage::Store>,
}

impl std::fmt::Debug for RpcMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcMetrics").finish_non_exhaustive()
    }
}

impl RpcMetrics {
    pub(super) fn new(
        allocate: (Counter, Counter, Histogram),
        preferred: (Counter, Counter, Histogram),
        streams: Gauge,
    ) -> Self {
        let call = |(requests, errors, duration)| Call {
            requests,
            errors,
            duration,
        };
        RpcMetrics {
            allocate: call(allocate),
            preferred: call(preferred),
            streams,
            usage: None,
        }
    }

    pub(super) fn with_usage(mut self, usage: crate::usage::Store) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Records one call of `method` that took `elapsed` and succeeded or not.
    pub fn observe(&self, method: Method, elapsed: Duration, ok: bool) {
        let call = match method {
            Method::Allocate => &self.allocate,
            Method::GetPreferredAllocation => &self.preferred,
        };
        call.requests.inc();
        if !ok {
            call.errors.inc();
        }
        call.duration.observe(elapsed.as_secs_f64());
        if method == Method::Allocate
            && ok
            && let Some(usage) = &self.usage
        {
            usage.nudge();
        }
    }

    /// Counts an open ListAndWatch stream until the guard is dropped.
    pub fn stream_opened(&self) -> StreamGuard {
        self.streams.inc();
        StreamGuard {
            streams: self.streams.clone(),
        }
    }
}

/// Decrements the open-streams gauge when the stream ends.
pub struct StreamGuard {
    streams: Gauge,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.streams.dec();
    }
}
