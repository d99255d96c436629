//! Device ID → position lookup for the hot path: a HashMap with foldhash, a
//! maintained fast hasher. The keys are our own device IDs and the kubelet's
//! echo of them, so SipHash's flood resistance buys nothing, and hashing 800
//! replica IDs with it costs more than the policy itself.

use std::collections::HashMap;

/// Device ID → position in the resource's device list.
pub(super) type IdMap = HashMap<String, usize, foldhash::fast::RandomState>;
