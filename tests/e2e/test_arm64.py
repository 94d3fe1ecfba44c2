"""Architecture end to end: a task placed on an arm64 local instance
(`t4g.small`, `ecs.cpu-architecture=arm64`) runs only an image built for
arm64, and only where this machine can run arm64 binaries (natively, or
through QEMU registered with binfmt_misc); otherwise it stops as ECS stops
it. Tasks of the machine's own architecture run as before."""

import hashlib
import io
import json
import os
import platform
import struct
import subprocess
import tarfile

import pytest

from conftest import BERTH, BUSYBOX, unique, wait_status

ARM64_IMAGE = "berth-test/arm64-idle:latest"
ARM64 = "attribute:ecs.cpu-architecture == arm64"
X86_64 = "attribute:ecs.cpu-architecture == x86_64"


def arm64_runs_here():
    """Whether arm64 binaries run on this machine: natively, or through an
    enabled qemu-aarch64 binfmt_misc entry (Debian's qemu-user-static)."""
    if platform.machine() in ("aarch64", "arm64"):
        return True
    try:
        with open("/proc/sys/fs/binfmt_misc/qemu-aarch64") as f:
            return f.readline().strip() == "enabled"
    except OSError:
        return False


def add_instances(server, cluster, itype):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    p = subprocess.run([BERTH, "instances", "add", "--cluster", cluster, "--instance-type", itype,
                        "--endpoint-url", server.endpoint, "--output", "json"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["instances"]


def tar_of(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data, mode in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def arm64_idle_elf():
    """A static aarch64 executable that blocks forever in ppoll(2)."""
    code = struct.pack("<8I",
                       0xD2800000, 0xD2800001, 0xD2800002, 0xD2800003, 0xD2800004,  # x0..x4 = 0
                       0xD2800928,  # x8 = 73 (ppoll)
                       0xD4000001,  # svc #0
                       0x17FFFFFA)  # b back to the start
    base, entry = 0x400000, 0x400000 + 64 + 56
    size = 64 + 56 + len(code)
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8 + struct.pack(
        "<HHIQQQIHHHHHH", 2, 183, 1, entry, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return ehdr + phdr + code


@pytest.fixture(scope="module")
def arm64_image(images):
    """An image built for linux/arm64, made locally (`docker load` of a
    one-layer image whose config says arm64): no registry is reachable and
    this machine may not be able to build for arm64."""
    layer = tar_of([("idle", arm64_idle_elf(), 0o755)])
    config = json.dumps({
        "architecture": "arm64", "os": "linux", "config": {"Cmd": ["/idle"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        "history": [{"created_by": "berth e2e: test_arm64.py"}],
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [ARM64_IMAGE], "Layers": ["layer.tar"]}]).encode()
    archive = tar_of([(config_name, config, 0o644), ("layer.tar", layer, 0o644), ("manifest.json", manifest, 0o644)])
    p = subprocess.run(["docker", "load"], input=archive, capture_output=True)
    assert p.returncode == 0, p.stderr.decode()
    arch = subprocess.run(["docker", "image", "inspect", ARM64_IMAGE, "--format", "{{.Architecture}}"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert arch == "arm64"
    return ARM64_IMAGE


@pytest.fixture
def cluster(server, ecs, images):
    """A fresh cluster with one x86_64 (t3.small) and one arm64 (t4g.small)
    local instance."""
    name = unique("arch")
    ecs.create_cluster(clusterName=name)
    made = add_instances(server, name, "t3.small") + add_instances(server, name, "t4g.small")
    yield name, {i["instanceType"]: i for i in made}
    subprocess.run([BERTH, "instances", "remove", "--cluster", name, "--endpoint-url", server.endpoint,
                    *[i["containerInstanceArn"] for i in made]], capture_output=True, text=True)


def run_on(ecs, cluster, image, where, command=None):
    container = {"name": "app", "image": image, "memory": 32, "stopTimeout": 2}
    if command:
        container["command"] = command
    td = ecs.register_task_definition(family=unique("arch"), containerDefinitions=[container],
                                      requiresCompatibilities=["EC2"])["taskDefinition"]["taskDefinitionArn"]
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2",
                       placementConstraints=[{"type": "memberOf", "expression": where}])
    assert out["failures"] == [], out["failures"]
    [t] = out["tasks"]
    return t


def arch_of(task):
    return {a["name"]: a.get("value") for a in task["attributes"]}["ecs.cpu-architecture"]


def test_amd64_image_on_an_arm64_instance_fails_as_ecs_does(ecs, cluster):
    name, instances = cluster
    t = run_on(ecs, name, BUSYBOX, ARM64, ["sleep", "300"])
    assert t["containerInstanceArn"] == instances["t4g.small"]["containerInstanceArn"]
    assert arch_of(t) == "arm64"
    # The test image is built for amd64 only: no variant for linux/arm64,
    # whether or not this machine could emulate arm64.
    stopped = wait_status(ecs, name, t["taskArn"], "STOPPED")
    [c] = stopped["containers"]
    assert stopped["stopCode"] == "TaskFailedToStart"
    for reason in (stopped["stoppedReason"], c["reason"]):
        assert reason.startswith("CannotPullContainerError"), reason
        assert "linux/arm64" in reason, reason
        assert "does not contain descriptor matching platform" in reason, reason
    assert "exitCode" not in c


def test_arm64_image_runs_only_where_arm64_can_run(ecs, cluster, arm64_image):
    name, instances = cluster
    t = run_on(ecs, name, arm64_image, ARM64)
    assert t["containerInstanceArn"] == instances["t4g.small"]["containerInstanceArn"]
    if arm64_runs_here():
        running = wait_status(ecs, name, t["taskArn"], "RUNNING")
        assert arch_of(running) == "arm64"
        ecs.stop_task(cluster=name, task=t["taskArn"])
        wait_status(ecs, name, t["taskArn"], "STOPPED")
    else:
        stopped = wait_status(ecs, name, t["taskArn"], "STOPPED")
        [c] = stopped["containers"]
        assert stopped["stopCode"] == "TaskFailedToStart"
        for reason in (stopped["stoppedReason"], c["reason"]):
            assert reason.startswith("CannotStartContainerError"), reason
            assert "no emulation for linux/arm64 is installed (qemu-user-static)" in reason, reason


def test_native_tasks_run_as_before(ecs, cluster):
    name, instances = cluster
    t = run_on(ecs, name, BUSYBOX, X86_64, ["sleep", "300"])
    assert t["containerInstanceArn"] == instances["t3.small"]["containerInstanceArn"]
    assert arch_of(t) == "x86_64"
    running = wait_status(ecs, name, t["taskArn"], "RUNNING")
    [c] = running["containers"]
    assert c["lastStatus"] == "RUNNING" and "reason" not in c
    ecs.stop_task(cluster=name, task=t["taskArn"])
    wait_status(ecs, name, t["taskArn"], "STOPPED")


def test_doctor_says_which_architectures_run(tmp_path):
    p = subprocess.run([BERTH, "doctor", "--data-dir", str(tmp_path)], capture_output=True, text=True)
    out = p.stdout + p.stderr
    line = next((l for l in out.splitlines() if l[5:].startswith("platforms ")), None)
    assert line is not None, out
    assert line.startswith("ok "), "informational: never a failure"
    assert "(native)" in line, line
    if arm64_runs_here():
        assert "linux/arm64" in line, line
    else:
        assert "images built for arm64" in line and "qemu-user-static" in line, line
