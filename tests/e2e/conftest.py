"""Black-box test harness: starts `berth server` on a free port with a fresh
data dir and drives it with real clients (boto3 and the aws CLI)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BERTH = os.environ.get("BERTH_BIN", os.path.join(ROOT, "target", "release", "berth"))
REGION = "us-east-1"
ACCESS_KEY = "test"
SECRET_KEY = "test"
ECS_TARGET = "AmazonEC2ContainerServiceV20141113"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_STARTED = []
# The installation owner ids of the servers started, for the cleanup below.
_OWNERS = set()


def _kill_leftovers():
    # A test that fails half-way leaves its server running; end them all.
    for proc in _STARTED:
        if proc.poll() is None:
            proc.kill()
    # A server killed with SIGKILL and not restarted on its data dir leaves
    # the sandboxes of its pool behind (a restarted one takes them back):
    # once every server has ended, none of them belongs to anyone.
    for owner in _OWNERS:
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=berth.managed={owner}",
                              "--filter", "label=berth.pool=true"],
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def _owner_of(data_dir):
    import sqlite3
    try:
        con = sqlite3.connect(f"file:{os.path.join(data_dir, 'berth.db')}?mode=ro", uri=True, timeout=5)
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'owner'").fetchone()
        finally:
            con.close()
        return row[0] if row else None
    except sqlite3.Error:
        return None


import atexit  # noqa: E402
atexit.register(_kill_leftovers)


class Server:
    """One `berth server` process; can be killed and restarted on the same
    data dir and port."""

    def __init__(self, data_dir, extra_args=(), env=None):
        if not os.path.exists(BERTH):
            pytest.fail(f"{BERTH} does not exist: build it with `cargo build --release` (scripts/test does)")
        self.data_dir = data_dir
        self.port = free_port()
        self.extra_args = list(extra_args)
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.log_path = os.path.join(data_dir, "server.log")

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def _hosts_file(self):
        # Load balancer names go to a hosts file of the server's own, not the
        # machine's, unless a test says otherwise.
        if any(a.startswith("--hosts-file") for a in self.extra_args):
            return []
        return ["--hosts-file", os.path.join(self.data_dir, "hosts")]

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BERTH, "server", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
             "--strict-output", *self._hosts_file(), *self.extra_args],
            stdout=log, stderr=log, env=self.env,
        )
        _STARTED.append(self.proc)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"berth server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/_berth/health", timeout=1) as r:
                    if r.status == 200:
                        owner = _owner_of(self.data_dir)
                        if owner:
                            _OWNERS.add(owner)
                        return self
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"berth server did not answer within 20 s:\n{self.log()}")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        """SIGTERM; returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=20)
        return self.proc.returncode if self.proc else None

    def log(self):
        try:
            return open(self.log_path, errors="replace").read()[-5000:]
        except OSError:
            return ""


@pytest.fixture(scope="session")
def server():
    """A server shared by the tests of a session (each test uses its own names)."""
    d = tempfile.mkdtemp(prefix="berth-e2e-")
    s = Server(d).start()
    yield s
    code = s.stop()
    assert code == 0, f"server exited {code} on SIGTERM:\n{s.log()}"
    strict_failures = [l for l in s.log().splitlines() if "strict output" in l or "does not declare" in l]
    assert not strict_failures, strict_failures
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def fresh_server(tmp_path):
    """A server of the test's own, on a fresh data dir."""
    s = Server(str(tmp_path)).start()
    yield s
    s.stop()


def client(endpoint, service="ecs", validate=True, **kw):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=kw.pop("region", REGION),
        aws_access_key_id=kw.pop("access_key", ACCESS_KEY),
        aws_secret_access_key=kw.pop("secret_key", SECRET_KEY),
        config=botocore.config.Config(parameter_validation=validate, retries={"max_attempts": 1}),
        **kw,
    )


@pytest.fixture
def ecs(server):
    return client(server.endpoint)


@pytest.fixture
def ecs_raw(server):
    """A boto3 ECS client without client-side parameter validation, so the
    server's own validation is what answers."""
    return client(server.endpoint, validate=False)


class AwsCliError(Exception):
    def __init__(self, code, stderr):
        super().__init__(stderr)
        self.code = code
        self.stderr = stderr


def aws(endpoint, *args, region=REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY):
    """Run the aws CLI against Berth; returns parsed JSON output."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key,
               AWS_DEFAULT_REGION=region, AWS_PAGER="")
    env.pop("AWS_PROFILE", None)
    p = subprocess.run(["aws", "--endpoint-url", endpoint, "--output", "json", *args],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise AwsCliError(p.returncode, p.stderr)
    return json.loads(p.stdout) if p.stdout.strip() else {}


@pytest.fixture
def cli(server):
    return lambda *args, **kw: aws(server.endpoint, *args, **kw)


def signed_request(endpoint, body, headers, service="ecs", secret_key=SECRET_KEY,
                   access_key=ACCESS_KEY, region=REGION, sign=True, when=None):
    """POST a raw body, SigV4-signed by botocore, and return (status, headers, body bytes)."""
    req = botocore.awsrequest.AWSRequest(method="POST", url=endpoint + "/", data=body, headers=headers)
    if sign:
        creds = botocore.credentials.Credentials(access_key, secret_key)
        signer = botocore.auth.SigV4Auth(creds, service, region)
        if when is not None:
            # Sign as of another time, to test clock skew.
            import unittest.mock
            with unittest.mock.patch("botocore.auth.get_current_datetime", return_value=when):
                signer.add_auth(req)
        else:
            signer.add_auth(req)
    prepared = req.prepare()
    data = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    r = urllib.request.Request(prepared.url, data=data, method="POST", headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def ecs_call(endpoint, operation, body, **kw):
    """A raw ECS JSON 1.1 call; body is bytes or a JSON-able value."""
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{ECS_TARGET}.{operation}"}
    status, headers, data = signed_request(endpoint, body, headers, **kw)
    return status, headers, (json.loads(data) if data else None)


def unique(prefix):
    return f"{prefix}-{os.urandom(4).hex()}"


BUSYBOX = "berth-test/busybox:latest"
TESTAPP = "berth-test/testapp:latest"


@pytest.fixture(scope="session")
def images():
    """The locally built test images (no registry is reachable)."""
    p = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.fail("Docker Engine is not reachable; run scripts/setup (it installs and starts it):\n" + p.stderr)
    build = os.path.join(ROOT, "tests", "images", "build")
    p = subprocess.run([build], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.fail(f"building the test images failed:\n{p.stdout}\n{p.stderr}")
    return {"busybox": BUSYBOX, "testapp": TESTAPP}


def wait_task(ecs, cluster, arn, until, timeout=60, what="condition"):
    """Poll DescribeTasks until until(task) is true; returns the task."""
    deadline = time.time() + timeout
    task = None
    while time.time() < deadline:
        task = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
        if until(task):
            return task
        time.sleep(0.2)
    raise AssertionError(f"task did not reach {what} within {timeout}s: {json.dumps(task, default=str, indent=1)}")


def wait_status(ecs, cluster, arn, status, timeout=60):
    return wait_task(ecs, cluster, arn, lambda t: t["lastStatus"] == status, timeout, status)


def managed_containers(task_arn=None):
    """Names of the Docker containers Berth manages (of one task, if given:
    those labelled with it, and the network sandbox it took from the pool,
    which is named for it). Sandboxes waiting in a pool belong to no task."""
    out = subprocess.run(["docker", "ps", "-a", "--filter", "label=berth.managed", "--format", "{{.Names}}\t{{.Label \"berth.task\"}}"],
                         capture_output=True, text=True, check=True).stdout
    rows = [l.split("\t") for l in out.splitlines() if l]
    if task_arn is None:
        return [r[0] for r in rows if not r[0].startswith("berth-pool-")]
    tid = task_arn.rsplit("/", 1)[1]
    return [r[0] for r in rows if (len(r) > 1 and r[1] == task_arn) or r[0] == f"berth-{tid}-pause"]
