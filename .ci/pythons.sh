# Sourced by .ci/run and .ci/build_wheels.sh: where each CPython version lives.

# The interpreter for version $1 (e.g. 3.12): $PYTHON_3_12 if set, else pyenv's newest
# 3.12.*, else python3.12 on PATH; fails when there is none.
python_for() {
    local var="PYTHON_${1//./_}" found
    if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
    found=$(ls -d "$HOME"/.pyenv/versions/"$1".*/bin/python 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$found" ]; then echo "$found"; return; fi
    command -v "python$1" || { echo "no Python $1 (set PYTHON_${1//./_})" >&2; return 1; }
}
