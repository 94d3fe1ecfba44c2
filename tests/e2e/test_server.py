"""The berth binary: version, doctor, clean shutdown, and durability across kill -9."""

import os
import subprocess

from conftest import BERTH, Server, client, free_port


def test_version():
    out = subprocess.run([BERTH, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("berth ")


def test_doctor_reports_each_check(tmp_path):
    p = subprocess.run([BERTH, "doctor", "--data-dir", str(tmp_path), "--listen", f"127.0.0.1:{free_port()}"],
                       capture_output=True, text=True)
    lines = p.stdout.splitlines()
    names = [l[5:].split("  ")[0].strip() for l in lines]
    assert names == ["docker", "task limits", "platforms", "lb names", "data dir", "exposure", "port"], p.stdout
    exposure = [l for l in lines if l.split()[1] == "exposure"][0]
    assert exposure.startswith("ok") and "this machine only" in exposure, exposure
    names_line = [l for l in lines if l.split()[1] == "lb"][0]
    assert "DNS names" in names_line, "says whether load balancers' names can resolve here"
    limits = [l for l in lines if l.split()[1] == "task"][0]
    assert "cgroup" in limits, "says whether tasks get a cgroup of their own, or why not"
    data = [l for l in lines if l.split()[1] == "data"][0]
    assert data.startswith("ok")
    # The engine is part of the platform's setup: the test machine must have it.
    docker = [l for l in lines if l.split()[1] == "docker"][0]
    assert docker.startswith("ok"), f"Docker Engine must be running for Berth (scripts/setup starts it):\n{p.stdout}"
    assert p.returncode == 0


def test_doctor_warns_when_the_test_keys_are_reachable_from_elsewhere(tmp_path):
    p = subprocess.run([BERTH, "doctor", "--data-dir", str(tmp_path), "--listen", f"0.0.0.0:{free_port()}"],
                       capture_output=True, text=True)
    [exposure] = [l for l in p.stdout.splitlines() if l.split()[1] == "exposure"]
    assert exposure.startswith("WARN") and "test/test" in exposure, p.stdout
    assert p.returncode == 0, "a warning is not a failure"


def test_doctor_says_what_to_fix(tmp_path):
    import socket
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        p = subprocess.run([BERTH, "doctor", "--data-dir", str(tmp_path / "d"), "--listen",
                            f"127.0.0.1:{busy.getsockname()[1]}"],
                           capture_output=True, text=True,
                           env=dict(os.environ, DOCKER_HOST="unix:///nonexistent.sock", RUST_BACKTRACE="1"))
        assert p.returncode != 0
        assert "FAIL docker" in p.stdout and "apt-get install docker.io" in p.stdout
        assert "FAIL port" in p.stdout and "--listen" in p.stdout and "not Berth" in p.stdout
        # Said plainly, even with RUST_BACKTRACE set.
        assert p.stderr.strip() == "berth: 2 check(s) failed", p.stderr
    finally:
        busy.close()


def test_doctor_on_the_port_berth_serves(tmp_path):
    s = Server(str(tmp_path)).start()
    try:
        p = subprocess.run([BERTH, "doctor", "--data-dir", str(tmp_path / "d"), "--listen", f"127.0.0.1:{s.port}"],
                           capture_output=True, text=True)
        port = [l for l in p.stdout.splitlines() if l.split()[1] == "port"][0]
        assert port.startswith("ok"), p.stdout
        assert f"Berth is serving on 127.0.0.1:{s.port}: ECS (" in port, port
        assert "STS (4 operations)" in port and "IAM (81 operations)" in port and "/_berth/services" in port, port
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        s.stop()


def test_instances_add_help_says_count_defaults_to_one():
    out = subprocess.run([BERTH, "instances", "add", "--help"], capture_output=True, text=True, check=True).stdout
    usage = out.splitlines()[2]
    assert "--count" not in usage, usage
    count = out[out.index("--count"):].splitlines()
    assert "default 1" in " ".join(count[:3]) and "How many instances" in " ".join(count[:3]), out


def test_sigterm_shuts_down_cleanly(tmp_path):
    s = Server(str(tmp_path)).start()
    client(s.endpoint).create_cluster(clusterName="x")
    assert s.stop() == 0
    assert "berth stopped" in s.log()


def test_acknowledged_writes_survive_kill_9(tmp_path):
    s = Server(str(tmp_path)).start()
    ecs = client(s.endpoint)
    ecs.create_cluster(clusterName="durable", tags=[{"key": "k", "value": "v"}])
    for _ in range(3):
        ecs.register_task_definition(family="durable", containerDefinitions=[{"name": "a", "image": "x", "memory": 64}])
    ecs.deregister_task_definition(taskDefinition="durable:2")
    ecs.update_cluster_settings(cluster="durable", settings=[{"name": "containerInsights", "value": "enabled"}])
    s.kill9()
    s.start()
    ecs = client(s.endpoint)
    c = ecs.describe_clusters(clusters=["durable"], include=["TAGS", "SETTINGS"])["clusters"][0]
    assert c["status"] == "ACTIVE"
    assert c["tags"] == [{"key": "k", "value": "v"}]
    assert c["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    assert ecs.describe_task_definition(taskDefinition="durable:2")["taskDefinition"]["status"] == "INACTIVE"
    assert ecs.register_task_definition(family="durable",
                                        containerDefinitions=[{"name": "a", "image": "x", "memory": 64}])["taskDefinition"]["revision"] == 4
    s.stop()


def test_kill_9_during_writes_loses_no_acknowledged_write(tmp_path):
    import threading
    import time
    import botocore.exceptions
    s = Server(str(tmp_path)).start()
    ecs = client(s.endpoint)
    acked = []
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            try:
                r = ecs.register_task_definition(family="burst",
                                                 containerDefinitions=[{"name": "a", "image": "x", "memory": 64}])
                acked.append(r["taskDefinition"]["revision"])
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                return

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(1.5)
    s.kill9()
    stop.set()
    t.join()
    assert len(acked) > 5
    s.start()
    ecs = client(s.endpoint)
    listed = [a for page in ecs.get_paginator("list_task_definitions").paginate(familyPrefix="burst")
              for a in page["taskDefinitionArns"]]
    stored = {int(a.rsplit(":", 1)[1]) for a in listed}
    assert set(acked) <= stored
    s.stop()
