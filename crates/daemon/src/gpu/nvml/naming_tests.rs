//! Tests of `gpu::nvml::naming` (tables of cases).
use super::*;

const MIB: u64 = 1024 * 1024;
const A100_40GB: u64 = 40960 * MIB;
const H100_80GB: u64 = 81559 * MIB;

#[test]
fn profile_names_match_go_nvlib() {
    use gi_profile::*;
    let cases = [
        // The go-nvml DGX A100 mock table (reference §10).
        (SLICE_1, 1, 4864, A100_40GB, "1g.5gb"),
        (SLICE_1_REV1, 1, 4864, A100_40GB, "1g.5gb+me"),
        (SLICE_1_REV2, 1, 9856, A100_40GB, "1g.10gb"),
        (SLICE_2, 2, 9856, A100_40GB, "2g.10gb"),
        (SLICE_3, 3, 19968, A100_40GB, "3g.20gb"),
        (SLICE_4, 4, 19968, A100_40GB, "4g.20gb"),
        (SLICE_7, 7, 40192, A100_40GB, "7g.40gb"),
        // Compute instances smaller than their GPU instance get the `<C>c.` prefix.
        (SLICE_2, 1, 9856, A100_40GB, "1c.2g.10gb"),
        (SLICE_7, 4, 40192, A100_40GB, "4c.7g.40gb"),
        // H100 80GB profiles of config/nodes/h100-mig.yaml.
        (SLICE_1, 1, 9856, H100_80GB, "1g.10gb"),
        (SLICE_1_REV2, 1, 19968, H100_80GB, "1g.20gb"),
        (SLICE_2, 2, 20096, H100_80GB, "2g.20gb"),
        (SLICE_3, 3, 40192, H100_80GB, "3g.40gb"),
        (SLICE_7, 7, 80896, H100_80GB, "7g.80gb"),
        // Every suffix.
        (SLICE_1_REV1, 1, 9856, H100_80GB, "1g.10gb+me"),
        (SLICE_2_REV1, 2, 20096, H100_80GB, "2g.20gb+me"),
        (SLICE_1_ALL_ME, 1, 9856, H100_80GB, "1g.10gb+me.all"),
        (SLICE_2_ALL_ME, 1, 20096, H100_80GB, "1c.2g.20gb+me.all"),
        (SLICE_1_GFX, 1, 9856, H100_80GB, "1g.10gb+gfx"),
        (SLICE_4_GFX, 4, 40192, H100_80GB, "4g.40gb+gfx"),
        (SLICE_1_NO_ME, 1, 9856, H100_80GB, "1g.10gb-me"),
        (SLICE_2_NO_ME, 2, 20096, H100_80GB, "2g.20gb-me"),
        (SLICE_6, 6, 60000, H100_80GB, "6g.60gb"),
        (SLICE_8, 8, 81559, H100_80GB, "8g.80gb"),
    ];
    for (profile, c, mem, total, want) in cases {
        assert_eq!(
            mig_profile_name(profile, c, mem, total).as_deref(),
            Ok(want),
            "profile {profile}, {c} compute slices, {mem} MiB"
        );
    }
}

#[test]
fn profile_names_fail_on_unknown_profile_or_memory() {
    assert!(mig_profile_name(gi_profile::COUNT, 1, 4864, A100_40GB).is_err());
    assert!(mig_profile_name(99, 1, 4864, A100_40GB).is_err());
    assert!(mig_profile_name(gi_profile::SLICE_1, 1, 4864, 0).is_err());
}

#[test]
fn mig_memory_rounds_to_eighths_of_the_gpu() {
    let cases = [
        (A100_40GB, 4864, Some(5)),
        (A100_40GB, 4865 * 2, Some(10)),
        (A100_40GB, 40960, Some(40)),
        (H100_80GB, 1, Some(10)),
        (24564 * MIB, 5888, Some(6)),
        (0, 4864, None),
    ];
    for (total, mib, want) in cases {
        assert_eq!(mig_memory_gb(total, mib), want, "{total} bytes, {mib} MiB");
    }
}

fn gpus() -> Vec<(u32, String)> {
    ["0000:07:00.0", "0000:0f:00.0", "0000:47:00.0"]
        .iter()
        .enumerate()
        .map(|(i, b)| (i as u32, b.to_string()))
        .collect()
}

#[test]
fn links_are_counted_per_peer_gpu() {
    let r = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases: [(u32, Vec<String>, Vec<NvLink>); 5] = [
        (0, r(&[]), vec![]),
        (
            0,
            r(&["0000:0f:00.0", "0000:47:00.0", "0000:0f:00.0"]),
            vec![NvLink { peer: 1, links: 2 }, NvLink { peer: 2, links: 1 }],
        ),
        // Links to an NVSwitch or unknown device are not GPU peers.
        (
            1,
            r(&["0000:c5:00.0", "0000:07:00.0"]),
            vec![NvLink { peer: 0, links: 1 }],
        ),
        // A link reported back to the GPU itself is not a peer.
        (2, r(&["0000:47:00.0"]), vec![]),
        (
            2,
            r(&["0000:0f:00.0", "0000:07:00.0"]),
            vec![NvLink { peer: 0, links: 1 }, NvLink { peer: 1, links: 1 }],
        ),
    ];
    for (own, remotes, want) in cases {
        assert_eq!(
            count_links(own, &remotes, &gpus()),
            want,
            "GPU {own}: {remotes:?}"
        );
    }
}
