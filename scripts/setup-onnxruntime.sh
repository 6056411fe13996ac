#!/usr/bin/env bash
# Places ONNX Runtime 1.31.1 (the shared library `ort` 2.0.0-rc.15 loads dynamically) in
# .onnxruntime/, taken from the official PyPI wheel: ort's own binary download cannot be
# reached from our machines. The wheel is pinned by platform and hash, so the library is
# the same file everywhere; the server finds it there without any flag.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
library="libonnxruntime.so.1.31.1"
dest="$root/.onnxruntime"
wheel="onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl"
wheel_sha256="5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f"

if [[ -f "$dest/$library" ]]; then
    exit 0
fi
if [[ "$(uname -sm)" != "Linux x86_64" ]]; then
    echo "setup-onnxruntime: only Linux x86_64 is scripted; set ORT_DYLIB_PATH to a $library" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_x86_64 \
    --dest "$work" "onnxruntime==1.31.1"
echo "$wheel_sha256  $work/$wheel" | sha256sum --check --quiet
python3 - "$work/$wheel" "$work/$library" "$library" <<'PY'
import shutil, sys, zipfile
wheel, target, name = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive, archive.open(f"onnxruntime/capi/{name}") as src, open(target, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
mkdir -p "$dest"
mv "$work/$library" "$dest/$library"
echo "setup-onnxruntime: placed $dest/$library"
