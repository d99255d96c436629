//! NUMA node of a GPU (placeholder until the topology module lands in this branch).
