# syntax=docker/dockerfile:1
# Image for gpu-device-plugin.
#   docker build -t <registry>/gpu-device-plugin:0.1.0 .
#
# Runtime base: debian:bookworm-slim with Debian's libhwloc15 and libudev1, not distroless
# plus hand-copied .so files. The libraries and their dependencies then come from the
# same Debian release the builder links against (bookworm: hwloc 2.9, systemd 252), apt
# resolves their dependency closure, and a rebuild picks up Debian's security fixes; a
# hand-kept list of copied libraries breaks silently when one gains a dependency. The
# cost is about 50 MB over distroless/cc. The process needs no shell: the entrypoint is
# exec-form and NVML (libnvidia-ml.so.1) is injected by the NVIDIA container runtime.
#
# Package versions are pinned to the upstream release of bookworm (hwloc 2.9.0, systemd
# 252, pkg-config 1.8) with a wildcard for the Debian revision, so security updates of
# bookworm still install while a change of upstream version fails the build.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS builder
ENV DEBIAN_FRONTEND=noninteractive
# hwlocality-sys links hwloc statically through pkg-config, whose Libs.private asks for
# -ludev, hence libudev-dev.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      'libhwloc-dev=2.9.0-*' \
      'libudev-dev=252.*' \
      'pkg-config=1.8.*' \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The target directory is a build cache, so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --features hwloc \
 && install -D -m 0755 target/release/gpu-device-plugin /out/gpu-device-plugin

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ENV DEBIAN_FRONTEND=noninteractive
# The symlink keeps argv[0] == "nvidia-device-plugin" available for NVIDIA's chart and its
# config-manager, which finds the process to SIGHUP by that name.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      'libhwloc15=2.9.0-*' \
      'libudev1=252.*' \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s gpu-device-plugin /usr/bin/nvidia-device-plugin
COPY --from=builder /out/gpu-device-plugin /usr/bin/gpu-device-plugin

LABEL org.opencontainers.image.title="gpu-device-plugin" \
      org.opencontainers.image.description="Kubernetes device plugin for NVIDIA GPUs, a drop-in replacement for NVIDIA's k8s-device-plugin" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"

# Ask the NVIDIA container runtime for every GPU and NVML (utility) in this container;
# the driver version check is the workloads' business, not the plugin's.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    NVIDIA_DISABLE_REQUIRE=true

# Runs as root (uid 0) on purpose: the kubelet's device-plugins directory and kubelet.sock
# belong to root. The chart drops every capability.
ENTRYPOINT ["/usr/bin/gpu-device-plugin"]
