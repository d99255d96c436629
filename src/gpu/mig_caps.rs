//! MIG capability device nodes: the `/dev/nvidia-caps/nvidia-cap<N>` files a
//! container needs to use a MIG device, with N looked up in the driver's
//! `/proc/driver/nvidia-caps/mig-minors` table.

use std::collections::HashMap;

/// Directory of the capability device nodes inside a container.
pub const CAPS_DIR: &str = "/dev/nvidia-caps";

/// The parsed `mig-minors` table: capability name (`gpu0/gi1/access`) → minor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigMinors(HashMap<String, u32>);

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
        MigMinors(map)
    }

    /// The table the NVIDIA driver generates: `config` 1, `monitor` 2, then per
    /// GPU (up to 32) and GPU instance (15 each) one `access` entry followed by
    /// its 8 compute instances.
    pub fn driver_default() -> Self {
        let mut map = HashMap::new();
        map.insert("config".to_string(), 1);
        map.insert("monitor".to_string(), 2);
        let mut next = 3;
        for gpu in 0..32 {
            for gi in 0..15 {
                map.insert(format!("gpu{gpu}/gi{gi}/access"), next);
                next += 1;
                for ci in 0..8 {
                    map.insert(format!("gpu{gpu}/gi{gi}/ci{ci}/access"), next);
                    next += 1;
                }
            }
        }
        MigMinors(map)
    }

    /// Container paths of the GPU-instance and compute-instance capability
    /// nodes for a MIG device, or the name of the missing entry.
    pub fn cap_paths(&self, gpu_minor: u32, gi: u32, ci: u32) -> Result<Vec<String>, String> {
        let gi_name = format!("gpu{gpu_minor}/gi{gi}/access");
        let ci_name = format!("gpu{gpu_minor}/gi{gi}/ci{ci}/access");
        let gi_minor = self.0.get(&gi_name).ok_or(gi_name)?;
        let ci_minor = self.0.get(&ci_name).ok_or(ci_name)?;
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
