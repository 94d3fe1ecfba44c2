"""Amazon ECR end to end: the repository API (boto3 and the aws CLI), the
registry Berth serves on its own port at 127.0.0.1:<port> (docker login,
push and pull; the OCI distribution v2 protocol over raw HTTP), tags and
immutability, ECR's answers to bad input with nothing changed, tasks whose
image is in ECR form (`000000000000.dkr.ecr.us-east-1.amazonaws.com/<name>`)
pulled from Berth's registry on FARGATE and on an EC2 instance, and pushed
images surviving kill -9.

No registry on the internet is reachable: every image pushed here is made
locally from the test busybox image (tests/images/build), one of its own per
test (a committed layer holding a unique marker), so its digest is its own
and removing it never touches the images the other tests share. Every docker
command runs with DOCKER_CONFIG set to a directory of the test's own, so the
user's docker config and credentials are left alone."""

import base64
import datetime
import hashlib
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import botocore.exceptions
import pytest

from conftest import ACCESS_KEY, BERTH, BUSYBOX, REGION, SECRET_KEY, AwsCliError, Server, client, unique, wait_status, wait_task
from test_ec2_tasks import add_instances, remove_instances

ACCOUNT = "000000000000"
ECR_HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
EXEC_ROLE = "arn:aws:iam::000000000000:role/ecsTaskExecutionRole"
NET = {"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-1"]}}
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MANIFEST_ACCEPT = ", ".join([DOCKER_V2, OCI_MANIFEST,
                             "application/vnd.docker.distribution.manifest.list.v2+json",
                             "application/vnd.oci.image.index.v1+json"])
ZERO_DIGEST = "sha256:" + "0" * 64


# --- helpers: names, the API, the aws CLI ----------------------------------------------------------------


def registry_host(server):
    """The registry's address as docker names it: the server's own port."""
    return f"127.0.0.1:{server.port}"


def new_repo(ecr, prefix="repo", **kw):
    """Creates a repository of a unique name `<unique>/app`; returns its name."""
    name = f"{unique(prefix)}/app"
    ecr.create_repository(repositoryName=name, **kw)
    return name


def code_of(call):
    """The error code (and message) a boto3 call answers."""
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def cli_code_of(call):
    """The error code the aws CLI prints for a call that fails."""
    with pytest.raises(AwsCliError) as e:
        call()
    m = re.search(r"An error occurred \((\w+)\)", e.value.stderr)
    assert m, f"no error code in the aws CLI's stderr:\n{e.value.stderr}"
    return m.group(1)


def aws_text(endpoint, *args):
    """Run the aws CLI against Berth; returns its stdout as text (for the
    commands whose output is not JSON, like get-login-password)."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_DEFAULT_REGION=REGION, AWS_PAGER="")
    env.pop("AWS_PROFILE", None)
    p = subprocess.run(["aws", "--endpoint-url", endpoint, *args], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, f"aws {' '.join(args)} failed ({p.returncode}):\n{p.stderr}"
    return p.stdout


def login_password(endpoint):
    password = aws_text(endpoint, "ecr", "get-login-password").strip()
    assert password, "get-login-password printed nothing"
    return password


def api_password(ecr):
    """The registry password from GetAuthorizationToken: base64("AWS:" + password)."""
    token = base64.b64decode(ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]).decode()
    user, _, password = token.partition(":")
    assert user == "AWS" and password, token
    return password


def image_detail(ecr, name, **image_id):
    details = ecr.describe_images(repositoryName=name, imageIds=[image_id])["imageDetails"]
    assert len(details) == 1, details
    return details[0]


def all_repository_names(ecr):
    return [r["repositoryName"] for page in ecr.get_paginator("describe_repositories").paginate()
            for r in page["repositories"]]


def sha256_digest(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- helpers: raw HTTP to the registry ---------------------------------------------------------------------


def http(method, url, body=None, headers=None, auth=None):
    """One HTTP request; returns (status, headers, body bytes), errors included."""
    h = dict(headers or {})
    if auth is not None:
        h["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    if body is not None and "Content-Type" not in h:
        h["Content-Type"] = "application/octet-stream"
    req = urllib.request.Request(url, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def error_code(body):
    """The first error code of a registry error body ({"errors": [{"code": ...}]})."""
    try:
        return json.loads(body)["errors"][0]["code"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise AssertionError(f"not a registry error body: {body[:500]!r}")


def with_query(location, **params):
    """A Location with query parameters added (it may already have some)."""
    sep = "&" if "?" in location else "?"
    return location + sep + urllib.parse.urlencode(params)


class Registry:
    """Raw HTTP to a server's registry, authenticated as AWS:<password>."""

    def __init__(self, server, password):
        self.base = server.endpoint
        self.auth = ("AWS", password)

    def url(self, path_or_location):
        # A Location header may be absolute or relative to the registry.
        return urllib.parse.urljoin(self.base + "/", path_or_location)

    def __call__(self, method, path, body=None, headers=None, auth=True):
        return http(method, self.url(path), body, headers, self.auth if auth is True else auth)

    def manifest(self, name, reference, method="GET"):
        return self(method, f"/v2/{name}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})

    def start_upload(self, name):
        status, headers, body = self("POST", f"/v2/{name}/blobs/uploads/", body=b"")
        assert status == 202, (status, body)
        assert headers.get("Location"), "an upload session has a Location"
        return headers["Location"]


# --- helpers: docker with a config of the test's own --------------------------------------------------------


def _docker_host():
    """The engine the user's docker CLI talks to, so a fresh DOCKER_CONFIG
    (which has no contexts) still reaches it."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    p = subprocess.run(["docker", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}"],
                       capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else None


class Docker:
    """The docker CLI with DOCKER_CONFIG set to a directory of the test's
    own. Remembers the references it makes, to remove them at the end."""

    def __init__(self, config_dir):
        os.makedirs(config_dir, exist_ok=True)
        self.config_dir = config_dir
        self.env = dict(os.environ, DOCKER_CONFIG=config_dir)
        self.env.pop("DOCKER_CONTEXT", None)
        host = _docker_host()
        if host:
            self.env["DOCKER_HOST"] = host
        self.refs = []

    def run(self, *args, input=None):
        # A bounded wait: a registry that stalls fails the test, not the run.
        return subprocess.run(["docker", *args], capture_output=True, text=True, input=input, env=self.env,
                              timeout=300)

    def ok(self, *args, input=None):
        p = self.run(*args, input=input)
        assert p.returncode == 0, f"docker {' '.join(args)} failed ({p.returncode}):\n{p.stderr}\n{p.stdout}"
        return p.stdout

    def fails(self, *args, input=None):
        p = self.run(*args, input=input)
        assert p.returncode != 0, f"docker {' '.join(args)} succeeded but should have failed:\n{p.stdout}"
        return p

    def login(self, server, password=None):
        """docker login to the server's registry; returns the password used."""
        password = password or login_password(server.endpoint)
        self.ok("login", "--username", "AWS", "--password-stdin", registry_host(server), input=password + "\n")
        return password

    def make_image(self, label="img"):
        """A local image of its own: the test busybox plus a layer with a
        unique marker, its command `sleep 300`. Returns its local name."""
        name = f"berth-ecr-test/{unique(label)}:latest"
        box = unique("berth-ecr-build")
        self.ok("run", "--name", box, "--network", "none", BUSYBOX, "sh", "-c", f"echo {name} > /marker")
        try:
            self.ok("commit", "--change", 'CMD ["sleep", "300"]', box, name)
        finally:
            self.run("rm", "-f", box)
        self.refs.append(name)
        return name

    def tag(self, src, dst):
        self.ok("tag", src, dst)
        self.refs.append(dst)

    def push(self, ref):
        """docker push; returns the digest docker prints."""
        out = self.ok("push", ref)
        m = re.search(r"digest: (sha256:[0-9a-f]{64})", out)
        assert m, f"no digest in the output of docker push {ref}:\n{out}"
        return m.group(1)

    def pull(self, ref):
        self.refs.append(ref)
        return self.ok("pull", ref)

    def exists(self, ref):
        return self.run("image", "inspect", ref).returncode == 0

    def image_id(self, ref):
        return self.ok("image", "inspect", "--format", "{{.Id}}", ref).strip()

    def repo_digests(self, ref):
        return json.loads(self.ok("image", "inspect", "--format", "{{json .RepoDigests}}", ref)) or []

    def forget(self, *refs):
        """Removes every local copy of an image of this test's own (made with
        make_image, so no other test's image shares it): its tags, then its
        ID if anything (a digest reference) still holds it."""
        ids = {self.image_id(r) for r in refs if self.exists(r)}
        for r in refs:
            if self.exists(r):
                self.ok("rmi", r)
        for i in ids:
            if self.exists(i):
                self.ok("rmi", "-f", i)
        for r in refs:
            assert not self.exists(r), f"{r} is still present locally"

    def cleanup(self):
        # Only references this test made (all unique names): removing a tag
        # of an image that has others only untags it.
        for ref in reversed(self.refs):
            self.run("rmi", "-f", ref)


# --- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture
def ecr(server):
    return client(server.endpoint, "ecr")


@pytest.fixture
def ecr_raw(server):
    """Without the client's own checks, so the server's are reached."""
    return client(server.endpoint, "ecr", validate=False)


@pytest.fixture
def docker_env(images, tmp_path_factory):
    """docker with a DOCKER_CONFIG of the test's own, logged in nowhere."""
    d = Docker(str(tmp_path_factory.mktemp("docker-config")))
    yield d
    d.cleanup()


@pytest.fixture
def docker(server, docker_env):
    """docker with a DOCKER_CONFIG of the test's own, logged in to the
    session server's registry with the password of `aws ecr get-login-password`."""
    docker_env.login(server)
    return docker_env


@pytest.fixture
def registry(server, ecr):
    """Raw HTTP to the session server's registry."""
    return Registry(server, api_password(ecr))


def push_new_image(docker, server, name, tag="v1", label="img"):
    """Makes an image of the test's own, tags it <registry>/<name>:<tag> and
    pushes it; returns (local name, registry reference, digest)."""
    local = docker.make_image(label)
    ref = f"{registry_host(server)}/{name}:{tag}"
    docker.tag(local, ref)
    return local, ref, docker.push(ref)


# --- repositories -----------------------------------------------------------------------------------------


def test_create_repository_answers_its_uri_arn_and_settings(server, ecr, cli):
    name = f"{unique('create')}/app"
    repo = cli("ecr", "create-repository", "--repository-name", name)["repository"]
    assert repo["repositoryName"] == name
    assert repo["repositoryUri"] == f"127.0.0.1:{server.port}/{name}"
    assert repo["registryId"] == ACCOUNT
    assert repo["repositoryArn"] == f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}"
    assert repo["imageTagMutability"] == "MUTABLE"
    [described] = ecr.describe_repositories(repositoryNames=[name])["repositories"]
    assert described["repositoryUri"] == repo["repositoryUri"]
    assert described["repositoryArn"] == repo["repositoryArn"]
    assert described["imageTagMutability"] == "MUTABLE"
    assert name in all_repository_names(ecr)

    # Settings and tags given at creation are kept.
    other = f"{unique('settings')}/app"
    created = ecr.create_repository(
        repositoryName=other, imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
        encryptionConfiguration={"encryptionType": "AES256"},
        tags=[{"Key": "team", "Value": "video"}, {"Key": "env", "Value": "test"}])["repository"]
    assert created["imageTagMutability"] == "IMMUTABLE"
    [described] = ecr.describe_repositories(repositoryNames=[other])["repositories"]
    assert described["imageTagMutability"] == "IMMUTABLE"
    assert described["imageScanningConfiguration"] == {"scanOnPush": True}
    assert described["encryptionConfiguration"]["encryptionType"] == "AES256"
    tags = ecr.list_tags_for_resource(resourceArn=described["repositoryArn"])["tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "test"), ("team", "video")]
    out = cli("ecr", "list-tags-for-resource", "--resource-arn", described["repositoryArn"])
    assert sorted((t["Key"], t["Value"]) for t in out["tags"]) == [("env", "test"), ("team", "video")]


def test_repository_errors_change_nothing(ecr, ecr_raw, cli):
    name = f"{unique('errs')}/app"
    cli("ecr", "create-repository", "--repository-name", name, "--tags", "Key=k,Value=v")
    [before] = ecr.describe_repositories(repositoryNames=[name])["repositories"]

    # Creating it again fails, and the first one is as it was.
    code = cli_code_of(lambda: cli("ecr", "create-repository", "--repository-name", name,
                                   "--image-tag-mutability", "IMMUTABLE", "--tags", "Key=k,Value=other"))
    assert code == "RepositoryAlreadyExistsException"
    code, _ = code_of(lambda: ecr.create_repository(repositoryName=name))
    assert code == "RepositoryAlreadyExistsException"
    [after] = ecr.describe_repositories(repositoryNames=[name])["repositories"]
    assert after == before
    assert ecr.list_tags_for_resource(resourceArn=before["repositoryArn"])["tags"] == [{"Key": "k", "Value": "v"}]
    assert all_repository_names(ecr).count(name) == 1

    # Unknown repositories.
    missing = f"{unique('missing')}/app"
    code, _ = code_of(lambda: ecr.describe_repositories(repositoryNames=[missing]))
    assert code == "RepositoryNotFoundException"
    assert cli_code_of(lambda: cli("ecr", "describe-repositories", "--repository-names", missing)) \
        == "RepositoryNotFoundException"
    code, _ = code_of(lambda: ecr.delete_repository(repositoryName=missing))
    assert code == "RepositoryNotFoundException"
    assert cli_code_of(lambda: cli("ecr", "delete-repository", "--repository-name", missing)) \
        == "RepositoryNotFoundException"
    assert missing not in all_repository_names(ecr)

    # A name ECR does not allow (uppercase, here) creates nothing.
    bad = "Bad_Name" + unique("x")[-8:]
    code, _ = code_of(lambda: ecr_raw.create_repository(repositoryName=bad))
    assert code == "InvalidParameterException"
    assert cli_code_of(lambda: cli("ecr", "create-repository", "--repository-name", "Bad_Name")) \
        == "InvalidParameterException"
    names = all_repository_names(ecr)
    assert not [n for n in names if n.lower() in (bad.lower(), "bad_name")], names

    # Images that are not there.
    code, _ = code_of(lambda: ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "nope"}]))
    assert code == "ImageNotFoundException"
    assert cli_code_of(lambda: cli("ecr", "describe-images", "--repository-name", name,
                                   "--image-ids", "imageTag=nope")) == "ImageNotFoundException"
    out = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "nope"}])
    assert out["images"] == []
    assert out["failures"][0]["failureCode"] == "ImageNotFound"
    assert out["failures"][0]["imageId"] == {"imageTag": "nope"}
    [still] = ecr.describe_repositories(repositoryNames=[name])["repositories"]
    assert still == before


# --- credentials ------------------------------------------------------------------------------------------


def test_login_password_and_authorization_token(server, ecr, docker_env, tmp_path):
    host = registry_host(server)
    password = login_password(server.endpoint)
    docker_env.login(server, password)
    config = json.load(open(os.path.join(docker_env.config_dir, "config.json")))
    assert host in config.get("auths", {}), config

    # A wrong password is refused (in a config dir of its own, so nothing
    # of the good login is touched either way).
    wrong = Docker(str(tmp_path / "wrong-config"))
    p = wrong.fails("login", "--username", "AWS", "--password-stdin", host, input="not-the-password\n")
    assert p.stderr.strip(), "docker login says why it failed"
    wrong.fails("login", "--username", "AWS", "--password-stdin", host, input=password + "x\n")

    [auth] = ecr.get_authorization_token()["authorizationData"]
    token = base64.b64decode(auth["authorizationToken"]).decode()
    user, _, token_password = token.partition(":")
    assert user == "AWS" and token_password
    assert auth["proxyEndpoint"] == f"http://127.0.0.1:{server.port}"
    left = (auth["expiresAt"] - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    assert 11.5 * 3600 < left <= 12 * 3600 + 120, f"expiresAt is {left / 3600:.2f} h ahead, not about 12 h"
    # The token's password logs in too.
    fresh = Docker(str(tmp_path / "token-config"))
    fresh.login(server, token_password)


# --- the registry protocol --------------------------------------------------------------------------------


def test_registry_protocol_over_raw_http(server, ecr, registry):
    name = new_repo(ecr, "proto")

    # Authentication: Basic, as AWS:<password>.
    status, headers, _ = registry("GET", "/v2/", auth=None)
    assert status == 401
    assert (headers.get("WWW-Authenticate") or "").startswith("Basic"), dict(headers)
    status, _, _ = registry("GET", "/v2/", auth=("AWS", "wrong-password"))
    assert status == 401
    status, _, _ = registry("GET", "/v2/")
    assert status == 200

    status, _, body = registry("GET", f"/v2/{name}/tags/list")
    assert status == 200, body
    listed = json.loads(body)
    assert listed["name"] == name and not listed.get("tags"), listed

    # Unknown things.
    status, _, body = registry.manifest(name, "nope")
    assert status == 404 and error_code(body) == "MANIFEST_UNKNOWN"
    status, _, body = registry("GET", f"/v2/{unique('nosuchrepo')}/tags/list")
    assert status == 404 and error_code(body) == "NAME_UNKNOWN"
    status, _, _ = registry("HEAD", f"/v2/{name}/blobs/{ZERO_DIGEST}")
    assert status == 404
    status, _, body = registry("GET", f"/v2/{name}/blobs/{ZERO_DIGEST}")
    assert status == 404 and error_code(body) == "BLOB_UNKNOWN"

    # A monolithic upload: a wrong digest is refused, the right one stored.
    data = os.urandom(200) + b"berth monolithic blob"
    digest = sha256_digest(data)
    location = registry.start_upload(name)
    wrong = sha256_digest(b"something else")
    status, _, body = registry("PUT", with_query(location, digest=wrong), body=data)
    assert status == 400 and error_code(body) == "DIGEST_INVALID"
    status, _, _ = registry("HEAD", f"/v2/{name}/blobs/{wrong}")
    assert status == 404, "nothing stored under the wrong digest"
    location = registry.start_upload(name)
    status, headers, body = registry("PUT", with_query(location, digest=digest), body=data)
    assert status == 201, (status, body)
    assert headers.get("Docker-Content-Digest") == digest
    status, headers, _ = registry("HEAD", f"/v2/{name}/blobs/{digest}")
    assert status == 200
    assert headers.get("Content-Length") == str(len(data))
    status, _, body = registry("GET", f"/v2/{name}/blobs/{digest}")
    assert status == 200 and body == data
    status, _, body = registry("GET", f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=2-5"})
    assert status == 206 and body == data[2:6]

    # A chunked upload: POST, two PATCHes, then PUT with the digest.
    data2 = os.urandom(300) + b"berth chunked blob"
    digest2 = sha256_digest(data2)
    half = len(data2) // 2
    location = registry.start_upload(name)
    status, headers, body = registry("PATCH", location, body=data2[:half],
                                     headers={"Content-Range": f"0-{half - 1}"})
    assert status == 202, (status, body)
    location = headers.get("Location") or location
    status, headers, body = registry("PATCH", location, body=data2[half:],
                                     headers={"Content-Range": f"{half}-{len(data2) - 1}"})
    assert status == 202, (status, body)
    location = headers.get("Location") or location
    status, headers, body = registry("PUT", with_query(location, digest=digest2), body=b"")
    assert status == 201, (status, body)
    assert headers.get("Docker-Content-Digest") == digest2
    status, _, body = registry("GET", f"/v2/{name}/blobs/{digest2}")
    assert status == 200 and body == data2

    # A cross-repository mount.
    other = new_repo(ecr, "mount")
    status, _, _ = registry("HEAD", f"/v2/{other}/blobs/{digest}")
    assert status == 404, "not in the other repository before the mount"
    query = "?" + urllib.parse.urlencode({"mount": digest, "from": name})
    status, headers, body = registry("POST", f"/v2/{other}/blobs/uploads/{query}", body=b"")
    assert status == 201, (status, body)
    status, _, body = registry("GET", f"/v2/{other}/blobs/{digest}")
    assert status == 200 and body == data


# --- push, describe, pull ---------------------------------------------------------------------------------


def test_push_describe_and_pull(server, ecr, cli, docker, registry):
    name = new_repo(ecr, "push")
    local, ref, digest = push_new_image(docker, server, name)
    pushed_by = datetime.datetime.now(datetime.timezone.utc)

    d = image_detail(ecr, name, imageTag="v1")
    assert d["imageDigest"] == digest, "describe-images has the digest docker printed"
    assert d["imageTags"] == ["v1"]
    assert d["registryId"] == ACCOUNT and d["repositoryName"] == name
    assert d["imageSizeInBytes"] > 0
    assert abs((d["imagePushedAt"] - pushed_by).total_seconds()) < 300, d["imagePushedAt"]
    assert d["imageManifestMediaType"] in (DOCKER_V2, OCI_MANIFEST)
    assert "lastRecordedPullTime" not in d, "not pulled yet"
    described = cli("ecr", "describe-images", "--repository-name", name)["imageDetails"]
    assert [x["imageDigest"] for x in described] == [digest]

    assert cli("ecr", "list-images", "--repository-name", name)["imageIds"] == \
        [{"imageDigest": digest, "imageTag": "v1"}]
    untagged = cli("ecr", "list-images", "--repository-name", name, "--filter", "tagStatus=UNTAGGED")["imageIds"]
    assert digest not in [i.get("imageDigest") for i in untagged]
    tagged = ecr.list_images(repositoryName=name, filter={"tagStatus": "TAGGED"})["imageIds"]
    assert tagged == [{"imageDigest": digest, "imageTag": "v1"}]

    out = cli("ecr", "batch-get-image", "--repository-name", name, "--image-ids", "imageTag=v1")
    assert out["failures"] == []
    [img] = out["images"]
    assert img["imageId"]["imageDigest"] == digest
    assert sha256_digest(img["imageManifest"]) == digest, "the manifest is the pushed one, byte for byte"

    # Pull it back after removing every local copy.
    docker.forget(local, ref)
    docker.pull(ref)
    assert f"127.0.0.1:{server.port}/{name}@{digest}" in docker.repo_digests(ref)
    deadline = time.time() + 10
    while "lastRecordedPullTime" not in image_detail(ecr, name, imageTag="v1") and time.time() < deadline:
        time.sleep(0.2)
    d = image_detail(ecr, name, imageTag="v1")
    assert "lastRecordedPullTime" in d, "a pull is recorded"
    assert d["lastRecordedPullTime"] >= d["imagePushedAt"]

    # The same image through the registry protocol (after the docker pull,
    # so the pull time above is docker's own).
    status, _, body = registry("GET", f"/v2/{name}/tags/list")
    assert status == 200 and json.loads(body) == {"name": name, "tags": ["v1"]}
    status, headers, body = registry.manifest(name, "v1")
    assert status == 200
    assert headers.get("Docker-Content-Digest") == digest and sha256_digest(body) == digest
    assert headers.get("Content-Type") == d["imageManifestMediaType"]
    status, _, _ = registry.manifest(name, digest, method="HEAD")
    assert status == 200


def test_put_image_adds_a_tag_and_batch_delete_removes_tag_then_image(server, ecr, docker, registry):
    name = new_repo(ecr, "tags")
    _, _, digest = push_new_image(docker, server, name)
    [img] = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}])["images"]
    media = {"imageManifestMediaType": img["imageManifestMediaType"]} if img.get("imageManifestMediaType") else {}
    out = ecr.put_image(repositoryName=name, imageManifest=img["imageManifest"], imageTag="v2", **media)
    assert out["image"]["imageId"] == {"imageDigest": digest, "imageTag": "v2"}
    [d] = ecr.describe_images(repositoryName=name)["imageDetails"]
    assert d["imageDigest"] == digest and sorted(d["imageTags"]) == ["v1", "v2"], "one image, two tags"
    assert image_detail(ecr, name, imageTag="v2")["imageDigest"] == digest
    status, headers, _ = registry.manifest(name, "v2")
    assert status == 200 and headers.get("Docker-Content-Digest") == digest

    # Deleting by tag removes only the tag.
    out = ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "v2"}])
    assert out["failures"] == []
    assert out["imageIds"] == [{"imageDigest": digest, "imageTag": "v2"}]
    [d] = ecr.describe_images(repositoryName=name)["imageDetails"]
    assert d["imageDigest"] == digest and d["imageTags"] == ["v1"]
    status, _, _ = registry.manifest(name, "v2")
    assert status == 404
    status, _, _ = registry.manifest(name, digest)
    assert status == 200

    # Deleting by digest removes the image.
    out = ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageDigest": digest}])
    assert out["failures"] == []
    assert [i["imageDigest"] for i in out["imageIds"]] == [digest]
    assert ecr.list_images(repositoryName=name)["imageIds"] == []
    assert ecr.describe_images(repositoryName=name)["imageDetails"] == []
    status, _, _ = registry.manifest(name, digest)
    assert status == 404
    status, _, _ = registry.manifest(name, "v1")
    assert status == 404


def test_immutable_tags(server, ecr, cli, docker):
    name = f"{unique('immutable')}/app"
    repo = cli("ecr", "create-repository", "--repository-name", name,
               "--image-tag-mutability", "IMMUTABLE")["repository"]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    first, ref, digest_a = push_new_image(docker, server, name, label="first")

    # Pushing another image as v1 fails; v1 stays on the first image.
    second = docker.make_image("second")
    docker.tag(second, ref)
    docker.fails("push", ref)
    assert image_detail(ecr, name, imageTag="v1")["imageDigest"] == digest_a

    # Through the API: another manifest under v1 is refused.
    other_ref = f"{registry_host(server)}/{name}:other"
    docker.tag(second, other_ref)
    digest_b = docker.push(other_ref)
    assert digest_b != digest_a
    [img] = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "other"}])["images"]
    media = {"imageManifestMediaType": img["imageManifestMediaType"]} if img.get("imageManifestMediaType") else {}
    code, _ = code_of(lambda: ecr.put_image(repositoryName=name, imageManifest=img["imageManifest"],
                                            imageTag="v1", **media))
    assert code == "ImageTagAlreadyExistsException"
    assert image_detail(ecr, name, imageTag="v1")["imageDigest"] == digest_a
    assert image_detail(ecr, name, imageTag="other")["imageDigest"] == digest_b

    # MUTABLE again: the tag may move.
    out = ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="MUTABLE")
    assert out["imageTagMutability"] == "MUTABLE"
    [described] = ecr.describe_repositories(repositoryNames=[name])["repositories"]
    assert described["imageTagMutability"] == "MUTABLE"
    out = ecr.put_image(repositoryName=name, imageManifest=img["imageManifest"], imageTag="v1", **media)
    assert out["image"]["imageId"]["imageDigest"] == digest_b
    assert sorted(image_detail(ecr, name, imageTag="v1")["imageTags"]) == ["other", "v1"]
    untagged = ecr.list_images(repositoryName=name, filter={"tagStatus": "UNTAGGED"})["imageIds"]
    assert [i["imageDigest"] for i in untagged] == [digest_a], "the first image is kept, untagged"


def test_delete_repository_with_images_needs_force(server, ecr, cli, docker, registry):
    name = new_repo(ecr, "nonempty")
    _, _, digest = push_new_image(docker, server, name)
    [before] = ecr.describe_repositories(repositoryNames=[name])["repositories"]
    assert cli_code_of(lambda: cli("ecr", "delete-repository", "--repository-name", name)) \
        == "RepositoryNotEmptyException"
    code, _ = code_of(lambda: ecr.delete_repository(repositoryName=name))
    assert code == "RepositoryNotEmptyException"
    [after] = ecr.describe_repositories(repositoryNames=[name])["repositories"]
    assert after == before
    assert image_detail(ecr, name, imageTag="v1")["imageDigest"] == digest

    out = cli("ecr", "delete-repository", "--repository-name", name, "--force")
    assert out["repository"]["repositoryName"] == name
    code, _ = code_of(lambda: ecr.describe_repositories(repositoryNames=[name]))
    assert code == "RepositoryNotFoundException"
    assert name not in all_repository_names(ecr)
    status, _, body = registry("GET", f"/v2/{name}/tags/list")
    assert status == 404 and error_code(body) == "NAME_UNKNOWN"


# --- tasks pull from the registry -------------------------------------------------------------------------


def ecr_image(name, tag):
    return f"{ECR_HOST}/{name}:{tag}"


def pushed_then_forgotten(server, ecr, docker):
    """A repository with an image pushed as v1, every local copy of which is
    then removed, so a task can only get it from the registry. Returns
    (repository name, digest)."""
    name = new_repo(ecr, "task")
    local, ref, digest = push_new_image(docker, server, name)
    docker.forget(local, ref)
    docker.refs.append(ecr_image(name, "v1"))  # whatever name Berth pulls it under, removed at the end
    assert not docker.exists(ref), "the task must pull it"
    return name, digest


def test_fargate_task_runs_an_image_from_the_registry(server, ecr, ecs, docker):
    name, digest = pushed_then_forgotten(server, ecr, docker)
    cluster = unique("ecr-fg")
    ecs.create_cluster(clusterName=cluster)
    td = ecs.register_task_definition(
        family=unique("ecr-fg"), networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", executionRoleArn=EXEC_ROLE,
        containerDefinitions=[{"name": "main", "image": ecr_image(name, "v1"), "command": ["sleep", "300"]}],
    )["taskDefinition"]["taskDefinitionArn"]
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="FARGATE", networkConfiguration=NET)
    assert out["failures"] == []
    [t] = out["tasks"]
    try:
        running = wait_status(ecs, cluster, t["taskArn"], "RUNNING", timeout=90)
        assert running["containers"][0]["imageDigest"] == digest, "the task runs the pushed image"
    finally:
        ecs.stop_task(cluster=cluster, task=t["taskArn"])
        wait_status(ecs, cluster, t["taskArn"], "STOPPED")


def test_ec2_task_runs_an_image_from_the_registry(server, ecr, ecs, docker):
    name, digest = pushed_then_forgotten(server, ecr, docker)
    cluster = unique("ecr-ec2")
    ecs.create_cluster(clusterName=cluster)
    instances = add_instances(server, cluster)
    try:
        td = ecs.register_task_definition(
            family=unique("ecr-ec2"), requiresCompatibilities=["EC2"], executionRoleArn=EXEC_ROLE,
            containerDefinitions=[{"name": "main", "image": ecr_image(name, "v1"), "memory": 64,
                                   "command": ["sleep", "300"]}],
        )["taskDefinition"]["taskDefinitionArn"]
        out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2")
        assert out["failures"] == []
        [t] = out["tasks"]
        assert t["containerInstanceArn"] == instances[0]["containerInstanceArn"]
        try:
            running = wait_status(ecs, cluster, t["taskArn"], "RUNNING", timeout=90)
            assert running["containers"][0]["imageDigest"] == digest, "the task runs the pushed image"
        finally:
            ecs.stop_task(cluster=cluster, task=t["taskArn"])
            wait_status(ecs, cluster, t["taskArn"], "STOPPED")
    finally:
        remove_instances(server, cluster, instances)


def test_task_with_a_tag_not_in_the_repository_fails_to_start(server, ecr, ecs, images):
    name = new_repo(ecr, "notag")
    cluster = unique("ecr-notag")
    ecs.create_cluster(clusterName=cluster)
    td = ecs.register_task_definition(
        family=unique("ecr-notag"), networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", executionRoleArn=EXEC_ROLE,
        containerDefinitions=[{"name": "main", "image": ecr_image(name, "nope"), "command": ["sleep", "300"]}],
    )["taskDefinition"]["taskDefinitionArn"]
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="FARGATE", networkConfiguration=NET)
    assert out["failures"] == []
    done = wait_status(ecs, cluster, out["tasks"][0]["taskArn"], "STOPPED", timeout=90)
    assert done["stopCode"] == "TaskFailedToStart"
    assert done["stoppedReason"].startswith("CannotPullContainerError"), done["stoppedReason"]


# --- crash safety -----------------------------------------------------------------------------------------


def test_pushed_image_survives_kill_9(fresh_server, docker_env):
    s = fresh_server
    ecr = client(s.endpoint, "ecr")
    docker_env.login(s)
    name = new_repo(ecr, "crash")
    local, ref, digest = push_new_image(docker_env, s, name)

    s.kill9()
    s.start()
    ecr = client(s.endpoint, "ecr")
    [d] = ecr.describe_images(repositoryName=name)["imageDetails"]
    assert d["imageDigest"] == digest and d["imageTags"] == ["v1"]
    [repo] = ecr.describe_repositories(repositoryNames=[name])["repositories"]
    assert repo["repositoryUri"] == f"127.0.0.1:{s.port}/{name}"

    docker_env.forget(local, ref)
    docker_env.login(s)
    docker_env.pull(ref)
    assert f"127.0.0.1:{s.port}/{name}@{digest}" in docker_env.repo_digests(ref)


# --- lifecycle policies -----------------------------------------------------------------------------------


def keep_newest_v(count):
    return json.dumps({"rules": [{
        "rulePriority": 1, "description": f"keep the newest {count} v* images",
        "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"],
                      "countType": "imageCountMoreThan", "countNumber": count},
        "action": {"type": "expire"}}]})


def test_lifecycle_policy_previewed_then_enforced(tmp_path, docker_env):
    s = Server(str(tmp_path), extra_args=["--ecr-lifecycle-interval-seconds", "1"]).start()
    try:
        ecr = client(s.endpoint, "ecr")
        ecr_raw = client(s.endpoint, "ecr", validate=False)
        docker_env.login(s)
        name = new_repo(ecr, "ttl")
        pushed = [push_new_image(docker_env, s, name, tag=f"v{i}", label="ttl") for i in (1, 2, 3)]
        digests = [d for _, _, d in pushed]

        # A policy ECR refuses changes nothing.
        bad = keep_newest_v(1).replace('"expire"', '"delete"')
        assert code_of(lambda: ecr_raw.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=bad))[0] \
            == "InvalidParameterException"
        assert code_of(lambda: ecr.get_lifecycle_policy(repositoryName=name))[0] == "LifecyclePolicyNotFoundException"

        # The preview names the two older images, and expires nothing.
        ecr.start_lifecycle_policy_preview(repositoryName=name, lifecyclePolicyText=keep_newest_v(1))
        preview = ecr.get_lifecycle_policy_preview(repositoryName=name)
        assert preview["status"] == "COMPLETE"
        assert sorted(r["imageDigest"] for r in preview["previewResults"]) == sorted(digests[:2])
        assert all(r["appliedRulePriority"] == 1 and r["action"]["type"] == "EXPIRE"
                   for r in preview["previewResults"])
        assert preview["summary"]["expiringImageTotalCount"] == 2
        assert len(ecr.describe_images(repositoryName=name)["imageDetails"]) == 3

        ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=keep_newest_v(1))
        deadline = time.time() + 20
        while time.time() < deadline:
            left = ecr.describe_images(repositoryName=name)["imageDetails"]
            if len(left) == 1:
                break
            time.sleep(0.3)
        assert [d["imageDigest"] for d in left] == [digests[2]], left
        assert left[0]["imageTags"] == ["v3"]
        assert ecr.get_lifecycle_policy(repositoryName=name)["lastEvaluatedAt"]
        # The expired images are gone from the registry, their own layers too.
        reg = Registry(s, api_password(ecr))
        for d in digests[:2]:
            st, _, _ = reg.manifest(name, d, method="HEAD")
            assert st == 404
        st, _, body = reg("GET", f"/v2/{name}/tags/list")
        assert st == 200 and json.loads(body)["tags"] == ["v3"]
        # `berth images` lists the repository, its one image, and that the
        # policy expires nothing more until two more pushes.
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        p = subprocess.run([BERTH, "images", "--endpoint-url", s.endpoint], capture_output=True, text=True, env=env)
        assert p.returncode == 0, p.stderr
        [row] = [line for line in p.stdout.splitlines() if line.startswith(name + " ")]
        assert row.split()[1] == "1", p.stdout
        assert f"127.0.0.1:{s.port}/{name}" in row, p.stdout
        assert "after 1 more push(es)" in row, p.stdout
    finally:
        s.stop()


# --- pull behaviour ---------------------------------------------------------------------------------------


def test_pull_behaviours_with_the_registry_lacking_a_cached_image(tmp_path, docker_env, images):
    """ECS_IMAGE_PULL_BEHAVIOR when the registry no longer has an image the
    machine still caches: `default` pulls, fails and runs the cached copy;
    `prefer-cached` runs the cached copy without pulling; `always` fails
    the task as the pull does."""
    def run(server, name):
        ecs = client(server.endpoint)
        cluster = unique("pull")
        ecs.create_cluster(clusterName=cluster)
        td = ecs.register_task_definition(
            family=unique("pull"), requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
            cpu="256", memory="512", executionRoleArn=EXEC_ROLE,
            containerDefinitions=[{"name": "main", "image": ecr_image(name, "v1"), "essential": True}],
        )["taskDefinition"]["taskDefinitionArn"]
        arn = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="FARGATE",
                           networkConfiguration=NET)["tasks"][0]["taskArn"]
        task = wait_task(ecs, cluster, arn, lambda t: t["lastStatus"] in ("RUNNING", "STOPPED"),
                         what="RUNNING or STOPPED")
        ecs.stop_task(cluster=cluster, task=arn)
        return task

    for behaviour, runs in (("default", True), ("prefer-cached", True), ("always", False)):
        d = tmp_path / behaviour
        d.mkdir()
        s = Server(str(d), env={"ECS_IMAGE_PULL_BEHAVIOR": behaviour}).start()
        try:
            ecr = client(s.endpoint, "ecr")
            docker_env.login(s)
            name = new_repo(ecr, "pull")
            local, ref, digest = push_new_image(docker_env, s, name)
            # The registry loses the image; the machine keeps its copy.
            ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "v1"}])
            assert docker_env.exists(ref)
            task = run(s, name)
            if runs:
                assert task["lastStatus"] == "RUNNING", (behaviour, task)
                assert task["containers"][0]["imageDigest"] == digest
            else:
                assert task["lastStatus"] == "STOPPED", (behaviour, task)
                assert task["stopCode"] == "TaskFailedToStart"
                assert task["stoppedReason"].startswith("CannotPullContainerError"), task["stoppedReason"]
        finally:
            s.stop()
