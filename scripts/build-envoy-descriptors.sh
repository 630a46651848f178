#!/usr/bin/env bash
# The descriptor set Envoy's gRPC-JSON transcoder reads (/etc/envoy/descriptors.binpb in
# deployment): every file in proto/ and everything it imports (google/api/http.proto,
# google/rpc/error_details.proto for convert_grpc_status...). Usage: [output path].
set -euo pipefail
out="${1:-envoy/descriptors.binpb}"
case "$out" in /*) ;; *) [ $# -gt 0 ] && out="$PWD/$out" ;; esac
cd "$(dirname "$0")/.."
[ -d third_party/proto ] || node scripts/vendor-protos.mjs
mkdir -p "$(dirname "$out")"
node_modules/.bin/buf build -o "$out" --as-file-descriptor-set --exclude-source-info
echo "build-envoy-descriptors: $out"
