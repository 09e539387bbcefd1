#!/usr/bin/env bash
# The CMake package works from outside: install zmanager into a fresh prefix, build the examples
# as a separate project with find_package(zmanager CONFIG REQUIRED), and run one.
set -euo pipefail
source_dir=$1
build_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$source_dir/examples" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" --target maths_oneprocess >/dev/null
got=$(timeout 60 "$work/build/maths/maths_oneprocess")
[[ "$got" == $'7\n56\n3' ]] || { echo "FAIL: printed '$got'" >&2; exit 1; }
echo "find_package(zmanager) from an outside project: ok"
