#!/usr/bin/env python3
"""Assertions on the manifests .ci/chart-check rendered from charts/gpu-device-plugin.

Usage: chart_assertions.py RENDERED_DIR CHART_DIR
RENDERED_DIR holds <case>.yaml for each case named in CASES; CHART_DIR/ci/ holds the
value files. Prints one line per assertion, "ok   <case>: <what>" or
"FAIL <case>: <what>: <why>", and exits 1 if any failed.
"""

import pathlib
import re
import sys

import yaml

RESULTS = []  # (passed, label, why)


def check(case, what, cond, why=""):
    RESULTS.append((bool(cond), f"{case}: {what}", why))


def load(rendered, case):
    docs = [d for d in yaml.safe_load_all((rendered / f"{case}.yaml").read_text()) if d]
    all_ds = [d for d in docs if d.get("kind") == "DaemonSet"]
    is_mps = lambda d: d["metadata"]["name"].endswith("-mps-control-daemon")
    return {
        "docs": docs,
        "ds": [d for d in all_ds if not is_mps(d)],
        "mps": [d for d in all_ds if is_mps(d)],
        "cms": [d for d in docs if d.get("kind") == "ConfigMap"],
    }


def pod(r):
    return r["ds"][0]["spec"]["template"]["spec"]


def ctr(r):
    return pod(r)["containers"][0]


def env(r):
    return {e["name"]: e.get("value") for e in ctr(r).get("env", [])}


def volumes(r):
    return {v["name"]: v for v in pod(r).get("volumes", [])}


def mounts(r):
    return {m["mountPath"]: m for m in ctr(r).get("volumeMounts", [])}


def host_path_volume(r, path):
    return next(
        (v for v in volumes(r).values() if v.get("hostPath", {}).get("path") == path), None
    )


def assert_hardened(case, r, sys_admin=False):
    sc = ctr(r).get("securityContext", {})
    caps = sc.get("capabilities", {})
    check(case, "capabilities drop ALL", caps.get("drop") == ["ALL"], str(caps))
    if sys_admin:
        check(case, "adds only SYS_ADMIN", caps.get("add") == ["SYS_ADMIN"], str(caps))
        check(
            case,
            "allowPrivilegeEscalation not false next to SYS_ADMIN",
            "allowPrivilegeEscalation" not in sc,
            str(sc),
        )
    else:
        check(case, "adds no capability", "add" not in caps, str(caps))
        check(
            case,
            "no privilege escalation",
            sc.get("allowPrivilegeEscalation") is False,
            str(sc),
        )
    check(case, "read-only root filesystem", sc.get("readOnlyRootFilesystem") is True, str(sc))
    check(
        case,
        "seccomp RuntimeDefault",
        sc.get("seccompProfile") == {"type": "RuntimeDefault"},
        str(sc),
    )
    check(case, "not privileged", not sc.get("privileged"), str(sc))


def assert_base(case, r):
    """What every rendering must have, whatever the values."""
    check(case, "exactly one DaemonSet", len(r["ds"]) == 1, str(len(r["ds"])))
    if len(r["ds"]) != 1:
        return False
    p = pod(r)
    check(case, "one container, no sidecar", len(p["containers"]) == 1, str(len(p["containers"])))
    check(case, "no init container", not p.get("initContainers"), str(p.get("initContainers")))
    check(case, "no shared process namespace", not p.get("shareProcessNamespace"))
    kinds = sorted({d["kind"] for d in r["docs"]})
    if case not in API_CASES:
        check(
            case,
            "no ServiceAccount or RBAC objects",
            not set(kinds) & {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role"},
            str(kinds),
        )
        check(case, "no service account token", p.get("automountServiceAccountToken") is False)
    check(case, "priorityClassName system-node-critical", p.get("priorityClassName") == "system-node-critical")
    e = env(r)
    check(case, "NVIDIA_VISIBLE_DEVICES=all", e.get("NVIDIA_VISIBLE_DEVICES") == "all", str(e))
    check(
        case,
        "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
        e.get("NVIDIA_DRIVER_CAPABILITIES") == "compute,utility",
        str(e),
    )
    res = ctr(r).get("resources", {})
    check(
        case,
        "requests cpu and memory set",
        {"cpu", "memory"} <= set(res.get("requests", {})),
        str(res),
    )
    check(case, "memory limit set", "memory" in res.get("limits", {}), str(res))
    tol = p.get("tolerations", [])
    check(
        case,
        "tolerates nvidia.com/gpu NoSchedule",
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tol,
        str(tol),
    )
    check(
        case,
        "tolerates CriticalAddonsOnly",
        {"key": "CriticalAddonsOnly", "operator": "Exists"} in tol,
        str(tol),
    )
    terms = p["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    keys = {x["key"] for t in terms for x in t["matchExpressions"]}
    check(
        case,
        "node affinity on NFD and nvidia.com/gpu.present labels",
        {"feature.node.kubernetes.io/pci-10de.present", "nvidia.com/gpu.present"} <= keys,
        str(keys),
    )
    dp = host_path_volume(r, "/var/lib/kubelet/device-plugins")
    check(
        case,
        "device-plugins hostPath type Directory",
        dp is not None and dp["hostPath"].get("type") == "Directory",
        str(dp),
    )
    m = mounts(r).get("/var/lib/kubelet/device-plugins")
    check(
        case,
        "device-plugins mounted at the kubelet path",
        m is not None and dp is not None and m["name"] == dp["name"],
        str(m),
    )
    check(case, "command gpu-device-plugin", ctr(r).get("command") == ["gpu-device-plugin"])
    return True


def assert_no_cdi(case, r):
    check(case, "no /var/run/cdi volume", host_path_volume(r, "/var/run/cdi") is None)
    check(case, "no CDI hook volume", host_path_volume(r, "/usr/bin/nvidia-ctk") is None)
    check(case, "no /var/run/cdi mount", "/var/run/cdi" not in mounts(r))


def assert_config(case, r, values):
    want = values["config"]["map"]
    check(case, "exactly one ConfigMap", len(r["cms"]) == 1, str(len(r["cms"])))
    if len(r["cms"]) != 1:
        return
    cm = r["cms"][0]
    check(case, "ConfigMap data equals config.map", cm.get("data") == want, str(cm.get("data")))
    vol = volumes(r).get("config", {})
    check(
        case,
        "config volume is that ConfigMap",
        vol.get("configMap", {}).get("name") == cm["metadata"]["name"],
        str(vol),
    )
    check(case, "config volume maps every key (no items)", "items" not in vol.get("configMap", {}))
    m = mounts(r).get("/config", {})
    check(
        case,
        "ConfigMap mounted as directory /config read-only",
        m.get("name") == "config" and "subPath" not in m and m.get("readOnly") is True,
        str(m),
    )
    key = values["config"].get("default") or ("default" if "default" in want else next(iter(want)))
    got = env(r).get("CONFIG_FILE")
    check(case, f"CONFIG_FILE=/config/{key}", got == f"/config/{key}", str(got))


CASES = {}
# Cases whose node features use the Kubernetes API (ServiceAccount, RBAC, token).
API_CASES = {"node-features", "dra"}


def case(name):
    def register(fn):
        CASES[name] = fn
        return fn
    return register


OPTIONAL_ENV = {
    "MIG_STRATEGY", "FAIL_ON_INIT_ERROR", "PASS_DEVICE_SPECS", "DEVICE_LIST_STRATEGY",
    "DEVICE_ID_STRATEGY", "NVIDIA_DRIVER_ROOT", "NVIDIA_DEV_ROOT", "GDRCOPY_ENABLED",
    "GDS_ENABLED", "MOFED_ENABLED", "DEVICE_DISCOVERY_STRATEGY", "NVIDIA_CDI_HOOK_PATH",
    "CDI_ANNOTATION_PREFIX", "CDI_FEATURE_FLAGS", "CONFIG_FILE", "METRICS_ADDRESS", "LOG_FORMAT",
    "NVIDIA_MIG_MONITOR_DEVICES", "MPS_ROOT", "MPS_ROOT_CTR_PATH", "USAGE_INTERVAL",
    "DCGM_COMPATIBLE_METRICS",
}



def host_dir(pod_spec, container, path):
    """The hostPath directory `container` sees at `path`, or None."""
    vols = {v["name"]: v for v in pod_spec.get("volumes", [])}
    for m in container.get("volumeMounts", []):
        if m["mountPath"] == path:
            return vols.get(m["name"], {}).get("hostPath", {}).get("path")
    return None


def assert_mps(case, r, root):
    check(case, "one MPS control-daemon DaemonSet", len(r["mps"]) == 1, str(len(r["mps"])))
    ds = r["mps"][0]
    mp = ds["spec"]["template"]["spec"]
    main = next(c for c in mp["containers"] if c["name"] == "mps-control-daemon")
    plugin = ctr(r)
    pe = env(r)
    de = {e["name"]: e.get("value") for e in main.get("env", [])}
    check(case, "plugin and daemon mount the same host directory at /mps",
          host_dir(pod(r), plugin, "/mps") == host_dir(mp, main, "/mps") == root,
          f"{host_dir(pod(r), plugin, '/mps')} vs {host_dir(mp, main, '/mps')}")
    check(case, f"MPS_ROOT={root} in both", pe.get("MPS_ROOT") == de.get("MPS_ROOT") == root, f"{pe} {de}")
    ctr_root = pe.get("MPS_ROOT_CTR_PATH")
    check(case, "both read the MPS root at the same container path",
          ctr_root == de.get("MPS_ROOT_CTR_PATH") == "/mps", f"{pe} {de}")
    marker = f"{ctr_root}/nvidia.com/gpu/.started"
    check(case, f"the plugin's marker path {marker} is inside its /mps mount",
          any(marker.startswith(m["mountPath"].rstrip("/") + "/") for m in plugin.get("volumeMounts", [])
              if host_dir(pod(r), plugin, m["mountPath"]) == root))
    check(case, "daemon /dev/shm is <root>/shm", host_dir(mp, main, "/dev/shm") == f"{root}/shm")
    check(case, "daemon reads the plugin's config file",
          de.get("CONFIG_FILE") == pe.get("CONFIG_FILE") and de.get("CONFIG_FILE"), f"{pe} {de}")
    check(case, "daemon command", main.get("command") == ["gpu-device-plugin", "mps-control-daemon"])
    check(case, "hostPID (the MPS server needs it), no hostIPC",
          mp.get("hostPID") is True and not mp.get("hostIPC"), str(mp.get("hostPID")))
    check(case, "nodeSelector nvidia.com/mps.capable=true",
          mp.get("nodeSelector", {}).get("nvidia.com/mps.capable") == "true", str(mp.get("nodeSelector")))
    init = mp.get("initContainers", [])
    check(case, "shm init container mounts /mps with Bidirectional propagation",
          any(m.get("mountPropagation") == "Bidirectional" and m["mountPath"] == "/mps"
              for i in init for m in i.get("volumeMounts", [])), str(init))
    psel = r["ds"][0]["spec"]["selector"]["matchLabels"]
    msel = ds["spec"]["selector"]["matchLabels"]
    plabels = r["ds"][0]["spec"]["template"]["metadata"]["labels"]
    mlabels = ds["spec"]["template"]["metadata"]["labels"]
    overlap = (all(mlabels.get(k) == v for k, v in psel.items())
               or all(plabels.get(k) == v for k, v in msel.items()))
    check(case, "neither DaemonSet selects the other's pods", not overlap, f"{psel} {msel}")


@case("mps")
def case_mps(c, r, values):
    assert_hardened(c, r)
    assert_mps(c, r, "/run/nvidia/mps")
    check(c, "plugin mounts /mps read-only", mounts(r)["/mps"].get("readOnly") is True)


@case("mps-root")
def case_mps_root(c, r, values):
    assert_mps(c, r, "/var/lib/mps")


@case("mps-off")
def case_mps_off(c, r, values):
    check(c, "no MPS control daemon when mps.enabled=false", not r["mps"])
    check(c, "no /mps mount", "/mps" not in mounts(r))
    check(c, "no MPS_ROOT", "MPS_ROOT" not in env(r))


@case("defaults")
def case_defaults(c, r, values):
    check(c, "no MPS control daemon without an MPS config", not r["mps"])
    check(c, "no /mps mount without MPS", "/mps" not in mounts(r))
    assert_hardened(c, r)
    assert_no_cdi(c, r)
    check(c, "no optional env var rendered", not set(env(r)) & OPTIONAL_ENV, str(env(r)))
    check(c, "no ConfigMap", not r["cms"])
    check(c, "no config volume", "config" not in volumes(r))
    check(c, "no driver-root mount", "/driver-root" not in mounts(r))
    check(c, "no probes or ports while metrics are off",
          not {"livenessProbe", "readinessProbe", "ports"} & set(ctr(r)))
    check(c, "no PodResources mount while metrics are off",
          "/var/lib/kubelet/pod-resources" not in mounts(r), str(mounts(r)))
    check(c, "no pod annotations", not r["ds"][0]["spec"]["template"]["metadata"].get("annotations"))


@case("config-map")
def case_config_map(c, r, values):
    assert_config(c, r, values(c))
    assert_hardened(c, r)
    assert_no_cdi(c, r)
    check(c, "no MIG monitor request for non-MIG configs",
          "NVIDIA_MIG_MONITOR_DEVICES" not in env(r))
    check(c, "no checksum annotation unless asked",
          "checksum/config" not in (r["ds"][0]["spec"]["template"]["metadata"].get("annotations") or {}))


@case("config-map-restart")
def case_config_map_restart(c, r, values):
    ann = r["ds"][0]["spec"]["template"]["metadata"].get("annotations") or {}
    check(c, "checksum/config annotation is a sha256",
          re.fullmatch(r"[0-9a-f]{64}", str(ann.get("checksum/config", ""))), str(ann))


@case("config-map-mig")
def case_config_map_mig(c, r, values):
    assert_config(c, r, values(c))
    assert_hardened(c, r, sys_admin=True)
    check(c, "NVIDIA_MIG_MONITOR_DEVICES=all", env(r).get("NVIDIA_MIG_MONITOR_DEVICES") == "all")


@case("mig-mixed")
def case_mig_mixed(c, r, values):
    assert_hardened(c, r, sys_admin=True)
    e = env(r)
    check(c, "MIG_STRATEGY=mixed", e.get("MIG_STRATEGY") == "mixed", str(e))
    check(c, "NVIDIA_MIG_MONITOR_DEVICES=all", e.get("NVIDIA_MIG_MONITOR_DEVICES") == "all", str(e))
    assert_no_cdi(c, r)


@case("cdi")
def case_cdi(c, r, values):
    assert_hardened(c, r)
    e = env(r)
    check(c, "DEVICE_LIST_STRATEGY=cdi-cri", e.get("DEVICE_LIST_STRATEGY") == "cdi-cri", str(e))
    v = host_path_volume(r, "/var/run/cdi")
    check(c, "/var/run/cdi hostPath DirectoryOrCreate",
          v is not None and v["hostPath"].get("type") == "DirectoryOrCreate", str(v))
    m = mounts(r).get("/var/run/cdi", {})
    check(c, "/var/run/cdi mounted writable", v is not None and m.get("name") == v["name"]
          and not m.get("readOnly"), str(m))
    d = host_path_volume(r, "/run/nvidia/driver")
    check(c, "driver root hostPath type Directory",
          d is not None and d["hostPath"].get("type") == "Directory", str(d))
    dm = mounts(r).get("/driver-root", {})
    check(c, "driver root mounted read-only at /driver-root",
          d is not None and dm.get("name") == d["name"] and dm.get("readOnly") is True, str(dm))
    check(c, "NVIDIA_DRIVER_ROOT set", e.get("NVIDIA_DRIVER_ROOT") == "/run/nvidia/driver", str(e))
    check(c, "CDI_FEATURE_FLAGS comma-joined from the list",
          e.get("CDI_FEATURE_FLAGS") == "disable-ipc-discoverer,no-additional-gids-for-device-nodes", str(e))
    hook_path = values(c)["cdi"]["nvidiaHookPath"]
    check(c, "NVIDIA_CDI_HOOK_PATH set", e.get("NVIDIA_CDI_HOOK_PATH") == hook_path, str(e))
    h = host_path_volume(r, hook_path)
    check(c, "hook binary hostPath type File", h is not None and h["hostPath"].get("type") == "File", str(h))
    hm = mounts(r).get(hook_path, {})
    check(c, "hook binary mounted read-only at its host path",
          h is not None and hm.get("name") == h["name"] and hm.get("readOnly") is True, str(hm))


@case("volume-mounts")
def case_volume_mounts(c, r, values):
    assert_hardened(c, r, sys_admin=True)
    assert_no_cdi(c, r)
    check(c, "DEVICE_LIST_STRATEGY=volume-mounts",
          env(r).get("DEVICE_LIST_STRATEGY") == "volume-mounts")


@case("compat-cpumanager")
def case_compat_cpumanager(c, r, values):
    check(c, "privileged", ctr(r).get("securityContext") == {"privileged": True},
          str(ctr(r).get("securityContext")))
    check(c, "PASS_DEVICE_SPECS=true", env(r).get("PASS_DEVICE_SPECS") == "true")


@case("security-context")
def case_security_context(c, r, values):
    want = values(c)["securityContext"]
    check(c, "user securityContext used verbatim", ctr(r).get("securityContext") == want,
          str(ctr(r).get("securityContext")))


@case("security-context-mig")
def case_security_context_mig(c, r, values):
    want = values("security-context")["securityContext"]
    check(c, "user securityContext used verbatim", ctr(r).get("securityContext") == want,
          str(ctr(r).get("securityContext")))
    e = env(r)
    check(c, "MIG_STRATEGY=mixed", e.get("MIG_STRATEGY") == "mixed", str(e))
    check(c, "no NVIDIA_MIG_MONITOR_DEVICES without CAP_SYS_ADMIN (the runtime would refuse the pod)",
          "NVIDIA_MIG_MONITOR_DEVICES" not in e, str(e))


@case("metrics")
def case_metrics(c, r, values):
    assert_hardened(c, r)
    e = env(r)
    check(c, "METRICS_ADDRESS=:2112", e.get("METRICS_ADDRESS") == ":2112", str(e))
    ports = ctr(r).get("ports", [])
    check(c, "metrics port 2112", ports == [{"name": "metrics", "containerPort": 2112, "protocol": "TCP"}],
          str(ports))
    lp = ctr(r).get("livenessProbe", {}).get("httpGet", {})
    rp = ctr(r).get("readinessProbe", {}).get("httpGet", {})
    check(c, "liveness probe /healthz on metrics", lp == {"path": "/healthz", "port": "metrics"}, str(lp))
    check(c, "readiness probe /readyz on metrics", rp == {"path": "/readyz", "port": "metrics"}, str(rp))
    check(c, "env only for values that are set",
          (e.get("LOG_FORMAT"), e.get("FAIL_ON_INIT_ERROR"), e.get("DEVICE_ID_STRATEGY"),
           "MIG_STRATEGY" in e) == ("json", "false", "index", False), str(e))
    check(c, "extraEnv passed through", e.get("DP_DISABLE_HEALTHCHECKS") == "xids", str(e))
    check(c, "usage sampled every 15s", e.get("USAGE_INTERVAL") == "15s", str(e))
    check(c, "DCGM-compatible names on request", e.get("DCGM_COMPATIBLE_METRICS") == "true", str(e))
    check(c, "PodResources socket directory mounted read-only",
          host_dir(pod(r), ctr(r), "/var/lib/kubelet/pod-resources") == "/var/lib/kubelet/pod-resources"
          and any(m["mountPath"] == "/var/lib/kubelet/pod-resources" and m.get("readOnly")
                  for m in ctr(r).get("volumeMounts", [])),
          str(mounts(r)))


def by_kind(r, kind):
    return [d for d in r["docs"] if d.get("kind") == kind]


@case("node-features")
def case_node_features(c, r, values):
    p = pod(r)
    sa = by_kind(r, "ServiceAccount")
    check(c, "one ServiceAccount", len(sa) == 1, str(sa))
    name = sa[0]["metadata"]["name"] if sa else None
    check(c, "the pod runs as it, with a token", p.get("serviceAccountName") == name
          and p.get("automountServiceAccountToken") is True, str(p.get("serviceAccountName")))
    cr = by_kind(r, "ClusterRole")
    check(c, "ClusterRole: nodes list and watch only",
          [d["rules"] for d in cr] == [[{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]}]],
          str(cr))
    role = by_kind(r, "Role")
    check(c, "Role: nodefeatures get, create, update only",
          [d["rules"] for d in role] == [[{"apiGroups": ["nfd.k8s-sigs.io"], "resources": ["nodefeatures"],
                                           "verbs": ["get", "create", "update"]}]], str(role))
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        b = by_kind(r, kind)
        check(c, f"{kind} binds the ServiceAccount",
              len(b) == 1 and b[0]["subjects"] == [{"kind": "ServiceAccount", "name": name,
                                                    "namespace": sa[0]["metadata"]["namespace"]}], str(b))
    e = env(r)
    check(c, "per-node config env", (e.get("CONFIG_FILE_SRCDIR"), e.get("DEFAULT_CONFIG"), e.get("NODE_LABEL"),
                                     e.get("FALLBACK_STRATEGIES"))
          == ("/config", "default", "nvidia.com/device-plugin.config", "named,single"), str(e))
    check(c, "no CONFIG_FILE with per-node config", "CONFIG_FILE" not in e, str(e))
    check(c, "FEATURE_LABELS=nodefeature", e.get("FEATURE_LABELS") == "nodefeature", str(e))
    refs = {x["name"]: x.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for x in ctr(r)["env"]}
    check(c, "downward-API env", [refs.get(k) for k in ("NODE_NAME", "NAMESPACE", "POD_NAME", "POD_UID")]
          == ["spec.nodeName", "metadata.namespace", "metadata.name", "metadata.uid"], str(refs))
    check(c, "the MPS control daemon renders", len(r["mps"]) == 1, str(len(r["mps"])))
    if r["mps"]:
        mp = r["mps"][0]["spec"]["template"]["spec"]
        me = {x["name"]: x for x in mp["containers"][0]["env"]}
        check(c, "MPS daemon: same per-node config, same ServiceAccount",
              me.get("CONFIG_FILE_SRCDIR", {}).get("value") == "/config" and "CONFIG_FILE" not in me
              and me.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName"
              and mp.get("serviceAccountName") == name and mp.get("automountServiceAccountToken") is True,
              str(me))


@case("feature-file")
def case_feature_file(c, r, values):
    assert_hardened(c, r)
    e = env(r)
    d = "/etc/kubernetes/node-feature-discovery/features.d"
    check(c, "FEATURE_LABELS=file", e.get("FEATURE_LABELS") == "file", str(e))
    check(c, "FEATURE_FILE in NFD's features.d", e.get("FEATURE_FILE") == f"{d}/gfd", str(e))
    check(c, "features.d is the host's", host_dir(pod(r), ctr(r), d) == d, str(volumes(r)))


@case("dra")
def _dra(case, r, values):
    e = env(r)
    check(case, "DRA_ENABLED=true", e.get("DRA_ENABLED") == "true", str(e))
    check(case, "DRA_DEVICES=all", e.get("DRA_DEVICES") == "all", str(e))
    check(case, "KUBELET_DIR=/var/lib/kubelet", e.get("KUBELET_DIR") == "/var/lib/kubelet", str(e))
    m = mounts(r)
    for path in ("/var/lib/kubelet/plugins_registry", "/var/lib/kubelet/plugins/gpu.nvidia.com"):
        vol = host_path_volume(r, path)
        check(case, f"{path} mounted at its host path", vol is not None and path in m, str(m))
    check(case, "claim specs go to the host's /var/run/cdi", host_path_volume(r, "/var/run/cdi") is not None)
    classes = {d["metadata"]["name"]: d for d in r["docs"] if d.get("kind") == "DeviceClass"}
    check(case, "DeviceClasses gpu.nvidia.com and mig.nvidia.com", sorted(classes) == ["gpu.nvidia.com", "mig.nvidia.com"], str(sorted(classes)))
    gpu = classes.get("gpu.nvidia.com", {}).get("spec", {})
    check(case, "gpu.nvidia.com serves nvidia.com/gpu", gpu.get("extendedResourceName") == "nvidia.com/gpu", str(gpu))
    check(case, "mig.nvidia.com has no extendedResourceName", "extendedResourceName" not in classes.get("mig.nvidia.com", {}).get("spec", {}))
    rules = [rule for d in r["docs"] if d.get("kind") == "ClusterRole" and d["metadata"]["name"].endswith("-dra") for rule in d["rules"]]
    verbs = {res: sorted(rule["verbs"]) for rule in rules for res in rule["resources"]}
    check(case, "RBAC: resourceslices create/update/delete/get/list/watch", verbs.get("resourceslices") == sorted(["create", "update", "delete", "get", "list", "watch"]), str(verbs))
    check(case, "RBAC: resourceclaims get only", verbs.get("resourceclaims") == ["get"], str(verbs))
    check(case, "NODE_NAME from spec.nodeName", any(x["name"] == "NODE_NAME" for x in ctr(r).get("env", [])))


def main():
    rendered = pathlib.Path(sys.argv[1])
    chart = pathlib.Path(sys.argv[2])

    def values(name):
        return yaml.safe_load((chart / "ci" / f"{name}-values.yaml").read_text())

    for name, fn in CASES.items():
        try:
            r = load(rendered, name)
            if assert_base(name, r):
                fn(name, r, values)
        except Exception as err:  # a missing key in the rendering is a failed check
            check(name, "rendering has the expected shape", False, f"{type(err).__name__}: {err}")

    failed = 0
    for ok, label, why in RESULTS:
        if ok:
            print(f"ok   {label}")
        else:
            failed += 1
            print(f"FAIL {label}: {why}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
