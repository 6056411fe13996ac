"""Renders every deployment in deploy/ with `kubectl kustomize` and validates every object:
Kubernetes objects against the OpenAPI schemas of a current Kubernetes release
(kubernetes-validate, strict: an unknown field is an error), and the KServe objects, whose
schemas are not Kubernetes', by the Kubernetes types they embed (the serving runtime's
containers and volumes as a Pod's) and the KServe fields this repository uses. Exits 1 on
the first broken object, naming it. Run by scripts/test.sh after yamllint.
"""

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.37.0"
ROOT = Path(__file__).resolve().parent
RENDERED = [
    ROOT / "kubernetes/overlays/single-node",
    ROOT / "kubernetes/overlays/replicated",
    ROOT / "kserve",
]
PROTOCOLS = {"v1", "v2", "grpc-v1", "grpc-v2"}


def render(directory):
    output = subprocess.run(
        ["kubectl", "kustomize", str(directory)], check=True, capture_output=True, text=True
    ).stdout
    return [document for document in yaml.safe_load_all(output) if document]


def validate_kubernetes(document):
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def as_pod(name, pod_spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": pod_spec}


def validate_serving_runtime(document):
    spec = document["spec"]
    assert set(spec["protocolVersions"]) <= PROTOCOLS, spec["protocolVersions"]
    assert spec["supportedModelFormats"], "a runtime supports at least one model format"
    for model_format in spec["supportedModelFormats"]:
        assert set(model_format) <= {"name", "version", "autoSelect", "priority"}, model_format
    pod_spec = {key: spec[key] for key in ("containers", "volumes") if key in spec}
    validate_kubernetes(as_pod(document["metadata"]["name"], pod_spec))
    container = spec["containers"][0]
    assert container["name"] == "kserve-container", "KServe finds its container by this name"
    ports = container.get("ports", [])
    assert len(ports) == 1, "Serverless mode routes exactly one port"
    if "grpc-v2" in spec["protocolVersions"]:
        assert ports[0]["name"] == "h2c", "gRPC is routed to a port named h2c"


def validate_inference_service(document, runtimes):
    predictor = document["spec"]["predictor"]
    model = predictor["model"]
    runtime = runtimes[model["runtime"]]
    formats = {entry["name"] for entry in runtime["spec"]["supportedModelFormats"]}
    assert model["modelFormat"]["name"] in formats, (model["modelFormat"], formats)
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"], model
    assert set(predictor) <= {"model", "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric"}, predictor


def assert_validation_can_fail(documents):
    """A misspelt field in a copy of a rendered Deployment must be refused, or this check
    checks nothing."""
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["ports"][0]["containerPorts"] = container["ports"][0].pop("containerPort")
    try:
        validate_kubernetes(broken)
    except kubernetes_validate.ValidationError:
        return
    sys.exit("a misspelt field passed validation: the schemas are not applied")


def main():
    assert_validation_can_fail(render(RENDERED[0]))
    failures = 0
    for directory in RENDERED:
        documents = render(directory)
        runtimes = {d["metadata"]["name"]: d for d in documents if d["kind"] == "ServingRuntime"}
        for document in documents:
            name = f"{directory.relative_to(ROOT)}: {document['kind']}/{document['metadata']['name']}"
            try:
                if document["kind"] == "ServingRuntime":
                    validate_serving_runtime(document)
                elif document["kind"] == "InferenceService":
                    validate_inference_service(document, runtimes)
                else:
                    validate_kubernetes(document)
                print(f"ok      {name}")
            except (kubernetes_validate.ValidationError, AssertionError, KeyError) as error:
                failures += 1
                print(f"BROKEN  {name}: {error}")
    if failures:
        sys.exit(f"{failures} broken object(s) in deploy/")


if __name__ == "__main__":
    main()
