"""Regenerates the gRPC stubs of churnserve_client from proto/ with grpcio-tools, or with
--check verifies that the committed stubs are what the protos generate (run by the test
command, so a changed .proto cannot ship with stale stubs).

The stubs live in the package's `_proto` folder; their imports of each other are rewritten
to point there, so they never clash with another copy of `churn.v1` on the path.

Run: python clients/python/generate_stubs.py [--check]
"""

import filecmp
import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
PROTO_ROOT = HERE.parents[1] / "proto"
PACKAGE = "churnserve_client._proto"
TARGET = HERE / "src" / "churnserve_client" / "_proto"
PROTOS = ["churn/v1/common.proto", "churn/v1/scoring.proto", "churn/v1/registry.proto", "churn/v1/monitoring.proto"]


def generate(into: pathlib.Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}",
         f"--python_out={into}", f"--pyi_out={into}", f"--grpc_python_out={into}", *PROTOS],
        check=True,
    )
    for path in into.rglob("*.py*"):
        text = path.read_text()
        text = text.replace("from churn.v1 import", f"from {PACKAGE}.churn.v1 import")
        path.write_text(text)
    for folder in [into, into / "churn", into / "churn" / "v1"]:
        (folder / "__init__.py").write_text("")


def files(root: pathlib.Path) -> set:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def main() -> int:
    if "--check" not in sys.argv:
        shutil.rmtree(TARGET, ignore_errors=True)
        TARGET.mkdir(parents=True)
        generate(TARGET)
        print(f"stubs written to {TARGET.relative_to(HERE)}")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        fresh = pathlib.Path(scratch)
        generate(fresh)
        committed, expected = files(TARGET), files(fresh)
        stale = sorted(str(p) for p in committed ^ expected)
        stale += sorted(str(p) for p in committed & expected if not filecmp.cmp(TARGET / p, fresh / p, shallow=False))
        if stale:
            print(f"stale stubs in {TARGET}: {', '.join(stale)}; run python clients/python/generate_stubs.py")
            return 1
        print(f"{len(committed)} stub files match proto/")
        return 0


if __name__ == "__main__":
    sys.exit(main())
