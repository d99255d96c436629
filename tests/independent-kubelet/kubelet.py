#!/usr/bin/env python3
"""An independent kubelet for gpu-device-plugin, written in Python against the wire
definition (proto/api.proto compiled here with grpcio-tools) and sharing no code with
the plugin or its Rust tests. It plays the kubelet's part over real Unix sockets
(Registration server on kubelet.sock, dialing each plugin back with the `localhost`
authority that kubelets >= 1.26 send) and checks the plugin binary end to end:
registration fields, devices with NUMA topology, Allocate, unknown IDs, preferred
allocation, a kubelet restart, a config edit and SIGTERM.

Usage: kubelet.py PLUGIN_BINARY REPO_ROOT. Prints one line per check and a final
"kubelet-py: N passed, M failed"; exits 1 on any failure.
"""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
from grpc_tools import protoc

WAIT = 10.0


def compile_proto(repo, out):
    """Generates api_pb2 / api_pb2_grpc from the repository's proto into `out`."""
    code = protoc.main(["protoc", f"-I{repo}/proto", f"--python_out={out}", f"--grpc_python_out={out}", "api.proto"])
    if code != 0:
        raise SystemExit("protoc failed")
    sys.path.insert(0, out)


class Kubelet:
    """The kubelet's device manager, as far as the plugin can see it."""

    def __init__(self, pb, pb_grpc, directory):
        self.pb, self.pb_grpc, self.dir = pb, pb_grpc, directory
        self.cond = threading.Condition()
        self.registrations = []  # RegisterRequest, in order
        self.devices = {}  # resource -> latest device list
        self.options = {}  # resource -> DevicePluginOptions
        self.channels = []
        self.server = None

    # --- the Registration service -------------------------------------------------
    def Register(self, request, context):
        if request.version != "v1beta1":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unsupported version")
        channel = self.dial(request.endpoint)
        stub = self.pb_grpc.DevicePluginStub(channel)
        options = stub.GetDevicePluginOptions(self.pb.Empty(), timeout=WAIT)
        with self.cond:
            self.registrations.append(request)
            self.options[request.resource_name] = options
            self.cond.notify_all()
        threading.Thread(target=self.follow, args=(stub, request.resource_name), daemon=True).start()
        return self.pb.Empty()

    def follow(self, stub, resource):
        try:
            for response in stub.ListAndWatch(self.pb.Empty()):
                with self.cond:
                    self.devices[resource] = list(response.devices)
                    self.cond.notify_all()
        except grpc.RpcError:
            pass

    # --- helpers ------------------------------------------------------------------
    def dial(self, endpoint):
        # gRPC's C core would send the socket path as :authority for a unix: target,
        # as kubelets before 1.26 did, and the Rust HTTP/2 stack refuses that; kubelets
        # since 1.26 send `localhost` (README: kubelet >= 1.26).
        channel = grpc.insecure_channel(
            "unix://" + os.path.join(self.dir, endpoint), options=[("grpc.default_authority", "localhost")]
        )
        self.channels.append(channel)
        return channel

    def start(self):
        # Like the kubelet: remove every socket in the directory, then serve.
        for name in os.listdir(self.dir):
            path = os.path.join(self.dir, name)
            if name.endswith(".sock"):
                os.unlink(path)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.method_handlers_generic_handler(
            "v1beta1.Registration",
            {
                "Register": grpc.unary_unary_rpc_method_handler(
                    self.Register,
                    request_deserializer=self.pb.RegisterRequest.FromString,
                    response_serializer=self.pb.Empty.SerializeToString,
                )
            },
        )
        self.server.add_generic_rpc_handlers((handler,))
        self.server.add_insecure_port("unix://" + os.path.join(self.dir, "kubelet.sock"))
        self.server.start()

    def stop(self):
        self.server.stop(grace=None).wait()
        for channel in self.channels:
            channel.close()
        self.channels = []
        sock = os.path.join(self.dir, "kubelet.sock")
        if os.path.exists(sock):
            os.unlink(sock)

    def wait(self, predicate, what):
        deadline = time.monotonic() + WAIT
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}")
                self.cond.wait(left)

    def client(self, resource):
        endpoint = [r.endpoint for r in self.registrations if r.resource_name == resource][-1]
        return self.pb_grpc.DevicePluginStub(self.dial(endpoint))


def numa(device):
    return [n.ID for n in device.topology.nodes] if device.HasField("topology") else []


def main():
    binary, repo = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="kubelet-py-")
    gen = os.path.join(work, "gen")
    os.mkdir(gen)
    compile_proto(repo, gen)
    import api_pb2 as pb  # noqa: E402  (generated just above)
    import api_pb2_grpc as pb_grpc  # noqa: E402

    sockets = os.path.join(work, "sockets")
    os.mkdir(sockets)
    config = os.path.join(work, "config.yaml")
    with open(config, "w") as f:
        f.write("version: v1\n")
    kubelet = Kubelet(pb, pb_grpc, sockets)
    kubelet.start()
    plugin = subprocess.Popen(
        [
            binary,
            "--simulate",
            os.path.join(repo, "config/nodes/dgx-a100.yaml"),
            "--kubelet-socket",
            os.path.join(sockets, "kubelet.sock"),
            "--config-file",
            config,
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(work, "plugin.log"), "w"),
    )
    results = []

    def check(name, fn):
        try:
            fn()
            results.append((name, None))
            print(f"ok   {name}")
        except Exception as e:  # report every check, keep going
            results.append((name, e))
            print(f"FAIL {name}: {e!r}")

    gpu = "nvidia.com/gpu"

    def registration():
        kubelet.wait(lambda: kubelet.registrations, "a registration")
        r = kubelet.registrations[0]
        assert (r.version, r.endpoint, r.resource_name) == ("v1beta1", "nvidia-gpu.sock", gpu), r
        assert r.options.get_preferred_allocation_available and not r.options.pre_start_required
        assert kubelet.options[gpu].get_preferred_allocation_available

    def devices():
        kubelet.wait(lambda: len(kubelet.devices.get(gpu, [])) == 8, "8 devices")
        devs = kubelet.devices[gpu]
        assert all(d.health == "Healthy" for d in devs)
        assert sorted(numa(d)[0] for d in devs) == [0, 0, 0, 0, 1, 1, 1, 1], [numa(d) for d in devs]

    def allocate():
        ids = [d.ID for d in kubelet.devices[gpu]]
        stub = kubelet.client(gpu)
        req = pb.AllocateRequest(container_requests=[pb.ContainerAllocateRequest(devices_ids=[ids[2], ids[0]])])
        resp = stub.Allocate(req, timeout=WAIT)
        assert resp.container_responses[0].envs["NVIDIA_VISIBLE_DEVICES"] == f"{ids[2]},{ids[0]}", resp

    def unknown_id():
        stub = kubelet.client(gpu)
        req = pb.AllocateRequest(container_requests=[pb.ContainerAllocateRequest(devices_ids=["GPU-nope"])])
        try:
            stub.Allocate(req, timeout=WAIT)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.code()
            assert "unknown device: GPU-nope" in e.details(), e.details()
            return
        raise AssertionError("Allocate of an unknown ID succeeded")

    def preferred():
        ids = [d.ID for d in kubelet.devices[gpu]]
        stub = kubelet.client(gpu)
        req = pb.PreferredAllocationRequest(
            container_requests=[
                pb.ContainerPreferredAllocationRequest(
                    available_deviceIDs=ids, must_include_deviceIDs=[ids[5]], allocation_size=2
                )
            ]
        )
        chosen = list(stub.GetPreferredAllocation(req, timeout=WAIT).container_responses[0].deviceIDs)
        # GPU 5's NVLink partner on the built-in layout is GPU 4.
        assert sorted(chosen) == sorted([ids[4], ids[5]]), chosen

    def restart():
        kubelet.stop()
        before = len(kubelet.registrations)
        started = time.monotonic()
        kubelet.start()
        kubelet.wait(lambda: len(kubelet.registrations) > before, "re-registration")
        took = time.monotonic() - started
        assert took < 1.0, f"re-registered after {took:.3f} s"
        print(f"     kubelet restart -> re-registered in {took * 1000:.1f} ms")

    def config_edit():
        kubelet.wait(lambda: len(kubelet.devices.get(gpu, [])) == 8, "8 devices after the restart")
        before = len(kubelet.registrations)
        tmp = config + ".tmp"
        with open(tmp, "w") as f:
            f.write("version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 4\n")
        started = time.monotonic()
        os.rename(tmp, config)
        kubelet.wait(lambda: len(kubelet.devices.get(gpu, [])) == 32, "32 replicas")
        print(f"     config edit -> ListAndWatch in {(time.monotonic() - started) * 1000:.1f} ms")
        assert len(kubelet.registrations) == before, "the resource registered again"

    def sigterm():
        plugin.send_signal(signal.SIGTERM)
        assert plugin.wait(timeout=WAIT) == 0
        left = [n for n in os.listdir(sockets) if n != "kubelet.sock"]
        assert not left, left

    for name, fn in [
        ("registers with NVIDIA's fields", registration),
        ("lists 8 healthy GPUs on two NUMA nodes", devices),
        ("Allocate sets NVIDIA_VISIBLE_DEVICES in request order", allocate),
        ("an unknown ID is INVALID_ARGUMENT", unknown_id),
        ("preferred allocation keeps must-include and its NVLink partner", preferred),
        ("re-registers within a second of a kubelet restart", restart),
        ("a replicas edit reaches ListAndWatch without re-registering", config_edit),
        ("SIGTERM exits 0 and removes the sockets", sigterm),
    ]:
        check(name, fn)

    if plugin.poll() is None:
        plugin.kill()
    kubelet.stop()
    failed = [n for n, e in results if e is not None]
    if failed:
        with open(os.path.join(work, "plugin.log")) as f:
            print(f.read()[-4000:])
    print(f"kubelet-py: {len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
