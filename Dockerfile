# syntax=docker/dockerfile:1
# One image per service, e.g.
#   docker build --build-arg SERVICE=auth -t adminkiosk/auth .
#   docker build --build-arg SERVICE=fleet --build-arg PORT=7002 -t adminkiosk/fleet .
# Services run from their TypeScript source with tsx (there is no build step), so the
# image holds the workspace packages, services/$SERVICE and a node_modules pruned to
# what that service needs at run time. docker-compose.yml builds it for each service.
ARG NODE_IMAGE=node:20-bookworm-slim

# The workspace's package.json files alone, so the npm ci layer below is reused until
# a manifest or the lockfile changes, not on every source edit.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY packages packages
COPY services services
RUN find packages services -mindepth 2 -maxdepth 2 ! -name package.json -exec rm -rf {} +

FROM ${NODE_IMAGE} AS deps
ARG SERVICE
ENV ONNXRUNTIME_NODE_INSTALL=skip
WORKDIR /app
RUN test -n "$SERVICE" || { echo "build with --build-arg SERVICE=<a folder under services/>" >&2; exit 1; }
COPY package.json package-lock.json .npmrc ./
COPY scripts/vendor-protos.mjs scripts/
COPY --from=manifests /src ./
RUN test -f "services/$SERVICE/package.json" || { echo "no service named '$SERVICE' under services/" >&2; exit 1; }
# npm ci: exactly package-lock.json, which lists every platform's optional packages.
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund --loglevel=error
# Keep in node_modules only what services/$SERVICE needs at run time: its dependencies
# (not its devDependencies), the workspace packages they link to and tsx, resolved the
# way Node does over the install paths recorded in package-lock.json.
RUN node --input-type=module - "$SERVICE" <<'EOF'
import { readFileSync, rmSync } from "node:fs";
const lock = JSON.parse(readFileSync("package-lock.json", "utf8")).packages;
const keep = new Set();
const resolve = (from, name) => {
  for (let dir = from; ; dir = dir.slice(0, Math.max(0, dir.lastIndexOf("/node_modules/")))) {
    const path = `${dir ? `${dir}/` : ""}node_modules/${name}`;
    if (path in lock) return path;
    if (!dir) return undefined;
  }
};
const visit = (path) => {
  if (keep.has(path)) return;
  keep.add(path);
  const pkg = lock[path];
  if (pkg.link) return visit(pkg.resolved);
  const optional = { ...pkg.optionalDependencies, ...pkg.peerDependenciesMeta };
  for (const name of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies })) {
    const found = resolve(path, name);
    if (found) visit(found);
    else if (!(name in optional)) throw new Error(`${path} needs ${name}, which package-lock.json does not have`);
  }
};
visit(`services/${process.argv[2]}`);
visit(resolve("", "tsx"));
const dropped = Object.keys(lock).filter((path) => path.includes("node_modules/") && !keep.has(path));
for (const path of dropped) rmSync(path, { recursive: true, force: true });
console.log(`node_modules for ${process.argv[2]}: kept ${[...keep].filter((p) => p.includes("node_modules/")).length} packages`);
EOF
RUN find node_modules/.bin -xtype l -delete && find node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete

FROM ${NODE_IMAGE} AS runtime
ARG SERVICE
# The service's port: platformServices in packages/devstack/src/services.ts (checked below).
ARG PORT=7001
ENV NODE_ENV=production \
    SERVICE=${SERVICE} \
    PORT=${PORT} \
    HOST=0.0.0.0
WORKDIR /app
# Owned by root and read-only to the user the service runs as.
COPY --from=deps /app/package.json ./
COPY --from=deps /app/node_modules node_modules
COPY packages packages
COPY services/${SERVICE} services/${SERVICE}
RUN test -f "services/$SERVICE/src/main.ts" || { echo "services/$SERVICE has no src/main.ts" >&2; exit 1; } \
 && grep -q "\[\"$SERVICE\", $PORT\]" packages/devstack/src/services.ts \
 || { echo "PORT=$PORT is not $SERVICE's port in packages/devstack/src/services.ts; pass --build-arg PORT=<its port>" >&2; exit 1; }
USER node
EXPOSE ${PORT}
# Ready (200 from /readyz) once its dependencies answer. The service listens on
# <SERVICE>_PORT when that is set (e.g. AUTH_PORT), else on its default, PORT.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const port = process.env[process.env.SERVICE.toUpperCase() + '_PORT'] || process.env.PORT; fetch('http://127.0.0.1:' + port + '/readyz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# exec, so the service is PID 1 and gets SIGTERM for its graceful shutdown. main.ts
# finds its migrations relative to its own file, whatever the working directory.
CMD ["sh", "-c", "exec node --import tsx services/$SERVICE/src/main.ts"]
