#!/usr/bin/env bash
# Creates .venv (Python 3.11) with the pinned stack and mmcv built from source with ops.
#
# mmcv 2.1.0 publishes no wheels for current torch, so its sdist is built here. Its setup.py
# forces -std=c++17 while torch >= 2.13 headers need C++20; we patch that flag in a private copy
# of the sdist, drop debug info (-g0) to shorten compile and link, and cache the built wheel in
# $LSNET_CACHE (default ~/.cache/lsnet), keyed by mmcv, torch and Python versions.
# Idempotent: a stamp holding the hash of the inputs makes a re-run a no-op.
set -euo pipefail

ROOT="${LSNET_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
VENV="${VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON_BIN:-python3.11}"
CACHE="${LSNET_CACHE:-$HOME/.cache/lsnet}"
MMCV_VERSION=2.1.0
MMCV_SHA256=d387bcab66b467479b6660310e23746cfc79c6e57acf04094680adb499a5cd3f
STAMP="$VENV/.lsnet-setup"

log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Everything that decides what gets installed or compiled: a change to any of it re-runs set-up.
want_stamp="$(cat "$ROOT/requirements.txt" "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/tools/setup_env.sh" \
    "$ROOT"/lsnet/ops/csrc/*.cpp | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" ]]; then
    log "environment up to date ($VENV)"
    exit 0
fi

start=$(date +%s)
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV with $PYTHON_BIN"
    "$PYTHON_BIN" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
# pip warns once per package about this machine's sparse local indexes; keep real errors visible.
pip_install() {
    local rc=0
    "${PIP[@]}" install --progress-bar off "$@" 2> >(grep -v '^WARNING: Location' >&2) \
        | { grep --line-buffered -E '^(Collecting|Successfully|Building)' || true; } || rc=$?
    return "$rc"
}

log "installing build tools"
pip_install "pip>=24" "setuptools<81" wheel ninja psutil

log "installing torch and the pinned stack (mmcv excluded)"
grep -vE '^(mmdet|mmsegmentation)==' "$ROOT/requirements.txt" > "$VENV/requirements-base.txt"
pip_install -r "$VENV/requirements-base.txt"

torch_version="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"
py_tag="$("$PY" -c 'import sys; print(f"cp{sys.version_info.major}{sys.version_info.minor}")')"
wheel_dir="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$torch_version-$py_tag-cpuops"
mkdir -p "$wheel_dir"

if "$PY" -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '$MMCV_VERSION')" 2>/dev/null; then
    log "mmcv $MMCV_VERSION with ops already installed"
else
    wheel="$(ls "$wheel_dir"/mmcv-*.whl 2>/dev/null | head -1 || true)"
    if [[ -z "$wheel" ]]; then
        log "no cached mmcv wheel for torch $torch_version/$py_tag: building from source (about 7 min on 2 cores)"
        build="$CACHE/build-mmcv-$$"
        rm -rf "$build" && mkdir -p "$build"
        # On any failure below: remove the build folder and a partial download, keep the log's tail.
        trap 'rc=$?; if [[ $rc -ne 0 ]]; then [[ -f "$build/build.log" ]] && tail -30 "$build/build.log"; rm -rf "$build" "$CACHE/sdist/download-$$"; fi' EXIT
        sdist="$CACHE/sdist/mmcv-$MMCV_VERSION.tar.gz"
        if [[ ! -f "$sdist" ]] || ! echo "$MMCV_SHA256  $sdist" | sha256sum -c --quiet - 2>/dev/null; then
            # pip download honours the user's index, mirrors, proxies and certificates (pip.conf, PIP_*)
            log "downloading the mmcv $MMCV_VERSION sdist with pip"
            part="$CACHE/sdist/download-$$"
            mkdir -p "$part"
            "${PIP[@]}" download --no-binary :all: --no-deps --no-build-isolation -d "$part" "mmcv==$MMCV_VERSION" \
                2> >(grep -v '^WARNING: Location' >&2) >/dev/null
            echo "$MMCV_SHA256  $part/mmcv-$MMCV_VERSION.tar.gz" | sha256sum -c --quiet -
            mv "$part/mmcv-$MMCV_VERSION.tar.gz" "$sdist"
            rm -rf "$part"
        fi
        tar -xzf "$sdist" -C "$build"
        std="$("$PY" - <<'PYEOF'
import torch
major, minor = (int(p) for p in torch.__version__.split('+')[0].split('.')[:2])
print('c++20' if (major, minor) >= (2, 13) else 'c++17')
PYEOF
)"
        "$PY" "$ROOT/tools/patch_mmcv_setup.py" "$build/mmcv-$MMCV_VERSION/setup.py" --std "$std"
        ncpu="$(nproc)"
        log "compiling mmcv ops with -std=$std on $ncpu cores (progress: [done/total] objects)"
        (
            cd "$build/mmcv-$MMCV_VERSION"
            MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$ncpu}" "${PIP[@]}" wheel -v --no-deps \
                --no-build-isolation -w "$build/dist" . 2>&1 \
                | tee "$build/build.log" \
                | grep --line-buffered -oE '^ *\[[0-9]+/[0-9]+\]|error:.*' \
                | sed -u 's/^ *\[\(.*\)\]$/  compiled \1 objects/'
        ) || { log "mmcv build failed; last lines of $build/build.log:"; exit 1; }
        cp "$build"/dist/mmcv-*.whl "$wheel_dir/"
        rm -rf "$build"
        trap - EXIT
        wheel="$(ls "$wheel_dir"/mmcv-*.whl | head -1)"
        log "cached $wheel"
    else
        log "reusing cached mmcv wheel $wheel"
    fi
    pip_install --no-deps "$wheel"
fi

log "installing mmdet, mmsegmentation and lsnet (editable, compiling its CPU SKA kernels)"
pip_install -r "$ROOT/requirements.txt"
LSNET_NO_EXT=1 pip_install --no-deps --no-build-isolation -e "$ROOT"
# The CPU SKA kernels are compiled in place, next to the sources the editable install points at.
ext_log="$VENV/ska-cpu-build.log"
if ! (cd "$ROOT" && "$PY" setup.py -q build_ext --inplace >"$ext_log" 2>&1); then
    log "WARNING: the CPU SKA kernels did not build; SKA runs its plain PyTorch path on CPU (slower)."
    log "last lines of $ext_log:"
    tail -15 "$ext_log" | sed 's/^/    /'
fi

"$PY" -c "import mmcv.ops, mmdet.models, mmseg.models, lsnet; from lsnet.ops.ska import _cpp_available; print('imports ok: mmcv', mmcv.__version__, '| compiled CPU SKA:', _cpp_available())"
echo "$want_stamp" > "$STAMP"
log "done in $(( $(date +%s) - start )) s"
