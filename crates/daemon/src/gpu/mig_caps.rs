//! MIG capability device nodes: the `/dev/nvidia-caps/nvidia-cap<N>` files a
//! container needs to use a MIG device, with N looked up in the driver's
//! `/proc/driver/nvidia-caps/mig-minors` table.

use std::collections::HashMap;

/// Directory of the capability device nodes inside a container.
pub const CAPS_DIR: &str = "/dev/nvidia-caps";

/// Where capability minors come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigMinors {
    /// The parsed `mig-minors` file: capability name (`gpu0/gi1/access`) → minor.
    Table(HashMap<String, u32>),
    /// The layout the NVIDIA driver generates, computed instead of stored:
    /// `config` 1, `monitor` 2, then per GPU (up to 32) and GPU instance (15
    /// each) one `access` entry followed by its 8 compute instances.
    DriverLayout,
}

impl Default for MigMinors {
    fn default() -> Self {
        MigMinors::Table(HashMap::new())
    }
}

const GPUS: u32 = 32;
const GPU_INSTANCES: u32 = 15;
const COMPUTE_INSTANCES: u32 = 8;

impl MigMinors {
    /// Parses the file's `name minor` lines; malformed lines are skipped.
    pub fn parse(text: &str) -> Self {
        let map = text
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                let name = parts.next()?;
                let minor = parts.next()?.parse().ok()?;
                Some((name.to_string(), minor))
            })
            .collect();
        MigMinors::Table(map)
    }

    /// The driver's own numbering (what the simulated backend uses).
    pub fn driver_default() -> Self {
        MigMinors::DriverLayout
    }

    fn minor(&self, gpu: u32, gi: u32, ci: Option<u32>) -> Option<u32> {
        match self {
            MigMinors::Table(map) => {
                let name = match ci {
                    None => format!("gpu{gpu}/gi{gi}/access"),
                    Some(ci) => format!("gpu{gpu}/gi{gi}/ci{ci}/access"),
                };
                map.get(&name).copied()
            }
            MigMinors::DriverLayout => {
                if gpu >= GPUS || gi >= GPU_INSTANCES || ci.is_some_and(|c| c >= COMPUTE_INSTANCES)
                {
                    return None;
                }
                let gi_minor = 3
                    + gpu * GPU_INSTANCES * (1 + COMPUTE_INSTANCES)
                    + gi * (1 + COMPUTE_INSTANCES);
                Some(ci.map_or(gi_minor, |c| gi_minor + 1 + c))
            }
        }
    }

    /// Container paths of the GPU-instance and compute-instance capability
    /// nodes for a MIG device, or the name of the missing entry.
    pub fn cap_paths(&self, gpu_minor: u32, gi: u32, ci: u32) -> Result<Vec<String>, String> {
        let gi_minor = self
            .minor(gpu_minor, gi, None)
            .ok_or_else(|| format!("gpu{gpu_minor}/gi{gi}/access"))?;
        let ci_minor = self
            .minor(gpu_minor, gi, Some(ci))
            .ok_or_else(|| format!("gpu{gpu_minor}/gi{gi}/ci{ci}/access"))?;
        Ok(vec![
            format!("{CAPS_DIR}/nvidia-cap{gi_minor}"),
            format!("{CAPS_DIR}/nvidia-cap{ci_minor}"),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_default_numbering_matches_the_driver_layout() {
        let t = MigMinors::driver_default();
        let cases = [
            (
                0,
                0,
                0,
                [
                    "/dev/nvidia-caps/nvidia-cap3",
                    "/dev/nvidia-caps/nvidia-cap4",
                ],
            ),
            (
                0,
                1,
                0,
                [
                    "/dev/nvidia-caps/nvidia-cap12",
                    "/dev/nvidia-caps/nvidia-cap13",
                ],
            ),
            (
                0,
                1,
                2,
                [
                    "/dev/nvidia-caps/nvidia-cap12",
                    "/dev/nvidia-caps/nvidia-cap15",
                ],
            ),
            (
                1,
                0,
                0,
                [
                    "/dev/nvidia-caps/nvidia-cap138",
                    "/dev/nvidia-caps/nvidia-cap139",
                ],
            ),
        ];
        for (gpu, gi, ci, want) in cases {
            assert_eq!(
                t.cap_paths(gpu, gi, ci).unwrap(),
                want,
                "gpu{gpu}/gi{gi}/ci{ci}"
            );
        }
    }

    #[test]
    fn driver_layout_refuses_ids_beyond_the_driver_table() {
        let t = MigMinors::driver_default();
        assert_eq!(t.cap_paths(32, 0, 0).unwrap_err(), "gpu32/gi0/access");
        assert_eq!(t.cap_paths(0, 15, 0).unwrap_err(), "gpu0/gi15/access");
        assert_eq!(t.cap_paths(0, 14, 8).unwrap_err(), "gpu0/gi14/ci8/access");
        // The last entry of the table: 3 + 32 * 15 * 9 - 1.
        assert_eq!(
            t.cap_paths(31, 14, 7).unwrap()[1],
            "/dev/nvidia-caps/nvidia-cap4322"
        );
    }

    #[test]
    fn parse_reads_the_file_and_reports_missing_entries() {
        let t = MigMinors::parse(
            "config 1\nmonitor 2\ngpu0/gi7/access 66\ngpu0/gi7/ci0/access 67\nbroken\n",
        );
        assert_eq!(
            t.cap_paths(0, 7, 0).unwrap(),
            [
                "/dev/nvidia-caps/nvidia-cap66",
                "/dev/nvidia-caps/nvidia-cap67"
            ]
        );
        assert_eq!(t.cap_paths(0, 7, 1).unwrap_err(), "gpu0/gi7/ci1/access");
        assert_eq!(t.cap_paths(1, 0, 0).unwrap_err(), "gpu1/gi0/access");
    }
}
