"""The rendered Deployment of each overlay, run as the kubelet would run it, without a
cluster: churnserve (`CHURNSERVE_BIN`, default target/release/churnserve, the image's
entrypoint) with exactly the container's arguments and environment, Secrets and ConfigMaps substituted with test values (for
`replicated`, the PostgreSQL cluster and S3 server the test command started), each volume
mount a temporary directory (ConfigMap volumes filled with their keys), and the probes
asked as the manifest names them: the startup and liveness gRPC health checks answer
SERVING once the server is up, the readiness check once every aliased version is loaded
and not while an aliased version cannot load, a SIGTERM drains within the grace period.

    python tests/deploy/probe_check.py single-node|replicated
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import grpc
import yaml

ROOT = Path(__file__).resolve().parents[2]
# The image's entrypoint is the release build; the test command passes its debug build.
BINARY = Path(os.environ.get("CHURNSERVE_BIN", ROOT / "target/release/churnserve"))
# grpc.health.v1: HealthCheckRequest{string service = 1}, HealthCheckResponse{ServingStatus
# status = 1} with SERVING = 1. Two one-field messages, encoded by hand rather than by a
# package whose protobuf pin the KServe client's conflicts with.
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
SERVING = 1


def health_request(service):
    encoded = service.encode()
    return (b"\x0a" + bytes([len(encoded)]) + encoded) if encoded else b""


def health_status(response):
    # Absent status is the enum's zero, UNKNOWN.
    return response[1] if response[:1] == b"\x08" else 0


def render(overlay):
    output = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy/kubernetes/overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [document for document in yaml.safe_load_all(output) if document]


def fresh_database():
    admin = os.environ["CHURNSERVE_TEST_POSTGRES_URL"]
    name = f"probe_{uuid.uuid4().hex}"
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
    return admin.rsplit("/", 1)[0] + "/" + name


def test_secrets(overlay):
    """What the operator's Secrets would hold, for this test."""
    secrets = {}
    if overlay == "replicated":
        secrets["churnserve-registry"] = {"url": fresh_database()}
        secrets["churnserve-object-store"] = {
            key: os.environ[key]
            for key in (
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_REGION",
                "AWS_ENDPOINT_URL",
                "AWS_ALLOW_HTTP",
            )
        }
    return secrets


class Pod:
    """The Deployment's first container, run as a process, with its volumes as directories
    that outlive it when they are persistent."""

    def __init__(self, documents, secrets, scratch, template=None):
        deployment = next(d for d in documents if d["kind"] == "Deployment")
        self.pod = template or deployment["spec"]["template"]
        self.container = self.pod["spec"]["containers"][0]
        self.config_maps = {
            d["metadata"]["name"]: d.get("data", {}) for d in documents if d["kind"] == "ConfigMap"
        }
        self.secrets = secrets
        self.scratch = scratch
        volumes = {v["name"]: v for v in self.pod["spec"]["volumes"]}
        self.mounts = {}
        for mount in self.container["volumeMounts"]:
            volume = volumes[mount["name"]]
            self.mounts[mount["mountPath"]] = (Path(scratch) / mount["name"], volume)
        self.process = None

    def substitute(self, text):
        """Mount paths in `text` replaced by their directories, in one pass (a directory
        may itself lie below a mount path, such as /tmp)."""
        paths = sorted(self.mounts, key=len, reverse=True)
        pattern = "|".join(re.escape(path) for path in paths) + r"(?=/|$|[^\w.-])"
        return re.sub(pattern, lambda m: str(self.mounts[m.group(0)][0]), text)

    def prepare_volumes(self):
        for directory, volume in self.mounts.values():
            if "emptyDir" in volume:
                shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True, exist_ok=True)
            if "configMap" in volume:
                for key, text in self.config_maps[volume["configMap"]["name"]].items():
                    (directory / key).write_text(self.substitute(text))

    def environment(self):
        env = {"PATH": os.environ["PATH"]}
        for source in self.container.get("envFrom", []):
            ref = source["secretRef"]
            values = self.secrets.get(ref["name"])
            assert values is not None or ref.get("optional"), f"Secret {ref['name']} is required"
            env.update(values or {})
        for variable in self.container.get("env", []):
            if "value" in variable:
                env[variable["name"]] = self.substitute(variable["value"])
                continue
            source = variable["valueFrom"]
            if "secretKeyRef" in source:
                ref, store = source["secretKeyRef"], self.secrets
            else:
                ref, store = source["configMapKeyRef"], self.config_maps
            value = store.get(ref["name"], {}).get(ref["key"])
            if value is None:
                assert ref.get("optional"), f"{ref['name']}/{ref['key']} is required"
                continue
            env[variable["name"]] = value
        return env

    def start(self):
        self.prepare_volumes()
        env = self.environment()
        # $(NAME) in args is the container's variable, as the kubelet expands it.
        args = [
            self.substitute(re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), arg))
            for arg in self.container.get("args", [])
        ]
        self.log = open(Path(self.scratch) / "server.log", "ab")
        self.process = subprocess.Popen(
            [str(BINARY), *args], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def probe(self, kind):
        """One probe as the kubelet makes it: True when it succeeds."""
        spec = self.container[kind]["grpc"]
        timeout = self.container[kind].get("timeoutSeconds", 1)
        with grpc.insecure_channel(f"127.0.0.1:{spec['port']}") as channel:
            check = channel.unary_unary(HEALTH_CHECK)
            try:
                answer = check(health_request(spec.get("service", "")), timeout=timeout)
            except grpc.RpcError:
                return False
        return health_status(answer) == SERVING

    def wait_for(self, kind, expected=True, limit=None):
        spec = self.container[kind]
        limit = limit or spec.get("periodSeconds", 10) * spec.get("failureThreshold", 3)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"churnserve exited: {self.tail()}"
            if self.probe(kind) == expected:
                return
            time.sleep(0.2)
        raise AssertionError(f"{kind} did not turn {expected} within {limit} s: {self.tail()}")

    def stays(self, kind, expected, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.probe(kind) == expected, f"{kind} turned {not expected}: {self.tail()}"
            time.sleep(0.25)

    def scrape(self):
        annotations = self.pod["metadata"]["annotations"]
        url = f"http://127.0.0.1:{annotations['prometheus.io/port']}{annotations['prometheus.io/path']}"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
            return response.read().decode()

    def terminate(self):
        """SIGTERM as the kubelet sends it: readiness drops at once, liveness holds, and the
        process exits within the grace period."""
        grace = self.pod["spec"]["terminationGracePeriodSeconds"]
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"still running {grace} s after SIGTERM")
        assert self.process.returncode == 0, f"exit {self.process.returncode}: {self.tail()}"
        print(f"  drained and exited {time.monotonic() - started:.1f} s after SIGTERM (grace {grace} s)")

    def tail(self):
        self.log.flush()
        return (Path(self.scratch) / "server.log").read_text(errors="replace")[-3000:]


def model_files(pod, overlay):
    if overlay == "replicated":
        root = Path(os.environ["CHURNSERVE_TEST_S3_ROOT"]) / "churnserve/registry/models"
    else:
        data_dir, _ = pod.mounts["/var/lib/churnserve"]
        root = data_dir / "artifacts/models"
    return sorted(root.glob("*.onnx"))


def check(overlay):
    print(f"{overlay}: the rendered Deployment, run as the kubelet would")
    with tempfile.TemporaryDirectory() as scratch:
        pod = Pod(render(overlay), test_secrets(overlay), scratch)
        pod.start()
        pod.wait_for("startupProbe")
        pod.wait_for("readinessProbe", limit=30)
        assert pod.probe("livenessProbe")
        assert "churn_models_loaded" in pod.scrape()
        print("  startup, liveness and readiness SERVING; /metrics at the annotated port")
        pod.terminate()

        # Every aliased version's artifact damaged: the next pod starts and stays live,
        # but is not ready until the artifacts are whole again.
        originals = {path: path.read_bytes() for path in model_files(pod, overlay)}
        assert originals, "the registry's model files"
        for path in originals:
            path.write_bytes(b"not the registered bytes")
        pod.start()
        pod.wait_for("startupProbe")
        pod.stays("readinessProbe", False, 3)
        assert pod.probe("livenessProbe")
        print("  aliased versions that cannot load: live, not ready")
        for path, original in originals.items():
            path.write_bytes(original)
        pod.wait_for("readinessProbe", limit=10)
        print("  artifacts restored: ready without a restart")
        pod.terminate()
        run_cronjobs(overlay, scratch)


def run_cronjobs(overlay, scratch):
    """Each CronJob's container, run once as its Job would: it must exit 0."""
    documents = render(overlay)
    for cronjob in (d for d in documents if d["kind"] == "CronJob"):
        template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
        job = Pod(documents, test_secrets(overlay), Path(scratch) / cronjob["metadata"]["name"], template)
        job.start()
        assert job.process.wait(timeout=120) == 0, f"{cronjob['metadata']['name']}: {job.tail()}"
        print(f"  CronJob {cronjob['metadata']['name']}: {job.tail().strip().splitlines()[-1]}")


if __name__ == "__main__":
    for overlay in sys.argv[1:]:
        check(overlay)
