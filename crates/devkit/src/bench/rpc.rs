//! RPC figures over one connection: empty-RPC baseline, Allocate with 1 and
//! 16 callers, GetPreferredAllocation per size, ListAndWatch first list.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::{Value, json};
use tonic::transport::Channel;

use super::stats::summarize;
use gpu_device_plugin::v1beta1::device_plugin_client::DevicePluginClient;
use gpu_device_plugin::v1beta1::{
    AllocateRequest, ContainerAllocateRequest, ContainerPreferredAllocationRequest, Empty,
    PreStartContainerRequest, PreferredAllocationRequest,
};

type Client = DevicePluginClient<Channel>;

/// How many calls a figure makes at most, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub calls: usize,
    pub time: Duration,
}

pub const QUICK: Budget = Budget {
    calls: 2000,
    time: Duration::from_secs(2),
};

/// Calls `call(i)` one after another within `budget`; returns the latency
/// of each call and the number of calls that failed.
pub async fn sequential<F, Fut>(budget: Budget, mut call: F) -> (Vec<Duration>, usize)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<(), tonic::Status>>,
{
    let mut samples = Vec::with_capacity(budget.calls);
    let mut errors = 0;
    let started = Instant::now();
    for i in 0..budget.calls {
        if i > 0 && started.elapsed() > budget.time {
            break;
        }
        let t = Instant::now();
        let ok = call(i).await.is_ok();
        samples.push(t.elapsed());
        errors += usize::from(!ok);
    }
    (samples, errors)
}

/// Pairs of (empty RPC, `call`) back to back on the same connection: the
/// median of the per-pair differences is what `call` costs over the floor,
/// with both halves of a pair seeing the same machine state.
pub async fn over_floor<F, Fut>(client: &Client, pairs: usize, mut call: F) -> f64
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<(), tonic::Status>>,
{
    let mut diffs = Vec::with_capacity(pairs);
    for i in 0..pairs {
        let mut c = client.clone();
        let t = Instant::now();
        let _ = c.get_device_plugin_options(Empty {}).await;
        let floor = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _ = call(i).await;
        diffs.push((t.elapsed().as_secs_f64() - floor) * 1e6);
    }
    diffs.sort_by(f64::total_cmp);
    let mid = diffs.get(diffs.len() / 2).copied().unwrap_or(0.0);
    (mid * 10.0).round() / 10.0
}

fn with_field(mut v: Value, key: &str, value: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.insert(key.into(), value);
    }
    v
}

fn line(fields: Value, samples: &mut [Duration], errors: usize) -> Value {
    let mut v = summarize(samples).json_us(fields);
    if let Some(map) = v.as_object_mut() {
        map.insert("errors".into(), json!(errors));
    }
    v
}

/// GetDevicePluginOptions and PreStartContainer: the cost of an empty RPC.
pub async fn baseline(client: &Client) -> Vec<Value> {
    let c = client.clone();
    let (mut s, e) = sequential(QUICK, |_| {
        let mut c = c.clone();
        async move { c.get_device_plugin_options(Empty {}).await.map(drop) }
    })
    .await;
    let options = line(
        json!({"figure": "empty_rpc", "rpc": "GetDevicePluginOptions"}),
        &mut s,
        e,
    );
    let (mut s, e) = sequential(QUICK, |_| {
        let mut c = c.clone();
        async move {
            c.pre_start_container(PreStartContainerRequest::default())
                .await
                .map(drop)
        }
    })
    .await;
    let prestart = line(
        json!({"figure": "empty_rpc", "rpc": "PreStartContainer"}),
        &mut s,
        e,
    );
    vec![options, prestart]
}

fn allocate_request(ids: &[String], i: usize) -> AllocateRequest {
    let id = ids.get(i % ids.len().max(1)).cloned().unwrap_or_default();
    AllocateRequest {
        container_requests: vec![ContainerAllocateRequest {
            devices_ids: vec![id],
        }],
    }
}

/// Allocate of one device, by `callers` concurrent callers on one connection.
pub async fn allocate(client: &Client, ids: &[String], callers: usize) -> Value {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let per_caller = Budget {
        calls: (QUICK.calls * 2 / callers.max(1)).max(50),
        time: QUICK.time,
    };
    for caller in 0..callers {
        let c = client.clone();
        let ids = ids.to_vec();
        tasks.spawn(async move {
            sequential(per_caller, |i| {
                let mut c = c.clone();
                let request = allocate_request(&ids, caller + i);
                async move { c.allocate(request).await.map(drop) }
            })
            .await
        });
    }
    let mut samples = Vec::new();
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        if let Ok((s, e)) = joined {
            samples.extend(s);
            errors += e;
        }
    }
    let rate = samples.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let mut v = line(
        json!({"figure": "allocate", "devices": ids.len(), "callers": callers}),
        &mut samples,
        errors,
    );
    if let Some(map) = v.as_object_mut() {
        map.insert("calls_per_s".into(), json!(rate.round()));
    }
    if callers == 1 {
        let over = over_floor(client, 1000, |i| {
            let mut c = client.clone();
            let request = allocate_request(ids, i);
            async move { c.allocate(request).await.map(drop) }
        })
        .await;
        v = with_field(v, "p50_over_floor_us", json!(over));
    }
    v
}

/// GetPreferredAllocation of `size` devices out of all `ids`, as the kubelet asks.
pub async fn preferred(client: &Client, ids: &[String], size: usize) -> Value {
    let request = PreferredAllocationRequest {
        container_requests: vec![ContainerPreferredAllocationRequest {
            available_device_i_ds: ids.to_vec(),
            must_include_device_i_ds: vec![],
            allocation_size: i32::try_from(size).unwrap_or(i32::MAX),
        }],
    };
    let c = client.clone();
    let (mut s, e) = sequential(QUICK, |_| {
        let mut c = c.clone();
        let request = request.clone();
        async move { c.get_preferred_allocation(request).await.map(drop) }
    })
    .await;
    let v = line(
        json!({"figure": "preferred_allocation", "devices": ids.len(), "size": size}),
        &mut s,
        e,
    );
    let over = over_floor(client, 1000, |_| {
        let mut c = client.clone();
        let request = request.clone();
        async move { c.get_preferred_allocation(request).await.map(drop) }
    })
    .await;
    with_field(v, "p50_over_floor_us", json!(over))
}

/// Opening ListAndWatch until the first list arrives, and that message's size.
pub async fn first_list(client: &Client, budget: Budget) -> Value {
    let c = client.clone();
    let size = Arc::new(AtomicUsize::new(0));
    let devices = Arc::new(AtomicUsize::new(0));
    let (mut s, e) = sequential(budget, |_| {
        let mut c = c.clone();
        let (size, devices) = (size.clone(), devices.clone());
        async move {
            let mut stream = c.list_and_watch(Empty {}).await?.into_inner();
            let first = stream
                .message()
                .await?
                .ok_or_else(|| tonic::Status::internal("stream ended before the first list"))?;
            size.store(first.encoded_len(), Ordering::Relaxed);
            devices.store(first.devices.len(), Ordering::Relaxed);
            Ok(())
        }
    })
    .await;
    let fields = json!({
        "figure": "list_and_watch_first_list",
        "devices": devices.load(Ordering::Relaxed),
        "message_bytes": size.load(Ordering::Relaxed),
    });
    line(fields, &mut s, e)
}
