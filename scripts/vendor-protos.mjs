// Copies the third-party .proto files our contracts import into third_party/proto
// (git-ignored), from the npm packages that ship them: google/api from
// google-proto-files, gRPC reflection from @grpc/reflection, gRPC health from
// grpc-health-check. buf.yaml lists third_party/proto as a module.
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "package.json"));
const out = join(root, "third_party", "proto");

function packageDir(name) {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    return undefined;
  }
}

const files = [
  ["google-proto-files", "google/api/annotations.proto", "google/api/annotations.proto"],
  ["google-proto-files", "google/api/http.proto", "google/api/http.proto"],
  ["google-proto-files", "google/api/field_behavior.proto", "google/api/field_behavior.proto"],
  ["google-proto-files", "google/rpc/error_details.proto", "google/rpc/error_details.proto"],
  ["@grpc/reflection", "build/proto/grpc/reflection/v1/reflection.proto", "grpc/reflection/v1/reflection.proto"],
  ["@grpc/reflection", "build/proto/grpc/reflection/v1alpha/reflection.proto", "grpc/reflection/v1alpha/reflection.proto"],
  ["grpc-health-check", "proto/health/v1/health.proto", "grpc/health/v1/health.proto"],
];

const missing = files.filter(([pkg]) => !packageDir(pkg));
if (missing.length > 0) {
  // A production install (--omit=dev) has no proto sources and needs none.
  console.log(`vendor-protos: skipped (not installed: ${[...new Set(missing.map(([p]) => p))].join(", ")})`);
  process.exit(0);
}
rmSync(out, { recursive: true, force: true });
for (const [pkg, from, to] of files) {
  const src = join(packageDir(pkg), from);
  if (!existsSync(src)) {
    console.error(`vendor-protos: ${pkg} no longer ships ${from}`);
    process.exit(1);
  }
  mkdirSync(dirname(join(out, to)), { recursive: true });
  cpSync(src, join(out, to));
}
console.log(`vendor-protos: ${files.length} files in third_party/proto`);
