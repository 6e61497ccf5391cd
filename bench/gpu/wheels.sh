#!/usr/bin/env bash
# Download here the wheels bench/gpu/run.sh needs on the GPU machine (Python 3.12, no network there) into .whl/,
# which .git/info/exclude keeps out of git; the device call then carries .whl.
set -eu
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 -d .whl simpy==4.1.2
ls -l .whl
