#!/usr/bin/env bash
# Does the production install (requirements.txt) build from wheels alone?
#
# A platform's build (Heroku, Scalingo, Dokku) runs `pip install -r
# requirements.txt` on the Python of .python-version. A package without a
# wheel for that Python is compiled there, and may fail. This downloads every
# package of requirements.txt, dependencies included, as binary wheels for
# each Python version given (default: 3.12 3.13 3.14) and Linux x86_64 up to
# glibc 2.35 (Ubuntu 22.04, the oldest base of the platforms' stacks).
#
# Exception: pure-Python packages published only as a source archive (today
# `crontab`, a dependency of rq-scheduler). Building those needs no compiler;
# they are built here first and must come out as `py3-none-any` wheels.
#
# Needs PyPI. Usage: scripts/check_wheels.sh [PYTHON_VERSION ...]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PIP="${PIP:-$ROOT/.venv/bin/pip}"
SDIST_ONLY_PURE_PYTHON=("crontab==1.0.5")
VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(3.12 3.13 3.14)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$PIP" wheel --quiet --no-deps -w "$tmp/built" "${SDIST_ONLY_PURE_PYTHON[@]}"
for wheel in "$tmp"/built/*.whl; do
    case "$wheel" in
        *-none-any.whl) ;;
        *) echo "check_wheels: $(basename "$wheel") is not pure Python" >&2; exit 1 ;;
    esac
done
platforms=(--platform manylinux1_x86_64 --platform manylinux2010_x86_64 --platform manylinux2014_x86_64)
for glibc in $(seq 17 35); do
    platforms+=(--platform "manylinux_2_${glibc}_x86_64")
done
status=0
for version in "${VERSIONS[@]}"; do
    if "$PIP" download --quiet --only-binary=:all: --implementation cp \
        --python-version "$version" "${platforms[@]}" \
        --find-links "$tmp/built" -d "$tmp/py$version" -r "$ROOT/requirements.txt" \
        >"$tmp/log$version" 2>&1; then
        echo "Python $version: $(ls "$tmp/py$version" | wc -l) packages, all wheels"
    else
        echo "Python $version: FAILED" >&2
        grep -E "^ERROR" "$tmp/log$version" >&2 || cat "$tmp/log$version" >&2
        status=1
    fi
done
exit $status
