// envoy/envoy.yaml without an Envoy binary: decoded strictly as an Envoy v3 Bootstrap
// against Envoy's own API protos (the copy @grpc/grpc-js-xds ships), held to the
// protoc-gen-validate rules Envoy enforces when it loads a config, then checked against
// proto/ and the services that exist: clusters, routes, REST transcoding and the RPCs
// that need no token.
//
// A service is deployed once services/<name>/src/main.ts exists. Every gRPC service of
// its package adminkiosk.<name>.v1 must then be routed to its cluster; services of a
// package whose service does not exist yet must not be routed (they would have no cluster).
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  createFileRegistry,
  fromBinary,
  fromJson,
  getOption,
  hasOption,
  isMessage,
  toJson,
  type DescField,
  type DescMessage,
  type DescMethod,
  type FileRegistry,
  type JsonObject,
  type JsonValue,
} from "@bufbuild/protobuf";
import { isReflectMessage, reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { AnySchema, anyUnpack, FileDescriptorSetSchema, MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { access } from "@adminkiosk/proto/adminkiosk/common/v1/access_pb";
import { http } from "@adminkiosk/proto/google/api/annotations_pb";
import type { HttpRule } from "@adminkiosk/proto/google/api/http_pb";
import { platformServices, serviceEntry, webPort } from "@adminkiosk/devstack";
import { tokenAudience, tokenIssuer } from "@adminkiosk/runtime";
import { clientAddressHeader } from "../../services/auth/src/client-address.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const configFile = "envoy/envoy.yaml";
const descriptorsInEnvoy = "/etc/envoy/descriptors.binpb";
const bufBin = join(repoRoot, "node_modules", ".bin", "buf");
const xdsPackage = join(repoRoot, "node_modules", "@grpc", "grpc-js-xds");

const work = mkdtempSync(join(tmpdir(), "envoy-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// ---- JSON access (the config is read after protobuf-es has normalized it) ----

const isObject = (v: JsonValue | undefined): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);
const obj = (v: JsonValue | undefined): JsonObject => (isObject(v) ? v : {});
const arr = (v: JsonValue | undefined): JsonValue[] => (Array.isArray(v) ? v : []);
const objs = (v: JsonValue | undefined): JsonObject[] => arr(v).filter(isObject);
const str = (v: JsonValue | undefined): string | undefined => (typeof v === "string" ? v : undefined);
const seconds = (v: JsonValue | undefined): number | undefined => (typeof v === "string" ? Number(v.replace(/s$/, "")) : undefined);
const typeOf = (v: JsonValue | undefined): string => (str(obj(v)["@type"]) ?? "").replace(/^.*\//, "");

function fail(problems: string[]) {
  if (problems.length > 0) expect.fail(problems.join("\n"));
}

function run(command: string, args: string[], cwd: string): void {
  const result = spawnSync(command, args, { cwd, encoding: "utf8", timeout: 120_000 });
  if (result.error) throw result.error;
  const shown = [command, ...args.slice(0, 2)].map((a) => (a.startsWith(repoRoot) ? relative(repoRoot, a) : a)).join(" ");
  if (result.status !== 0) throw new Error(`${shown} failed (exit ${result.status}):\n${result.stderr.trim()}`);
}

// ---- Envoy's API as a descriptor set ----

/**
 * Builds the Envoy API protos @grpc/grpc-js-xds ships (with their xds, googleapis and
 * protoc-gen-validate siblings) into a descriptor set, cached per package version. The
 * package ships a partial tree: files importing what it lacks (the v2 API, OpenCensus,
 * OpenTelemetry, Prometheus) are left out, and its validate.proto predates the
 * StringRules.ignore_empty the v3 protos use, so a copy gets that one field.
 */
function envoyApiDescriptors(): Uint8Array {
  const { version } = JSON.parse(readFileSync(join(xdsPackage, "package.json"), "utf8")) as { version: string };
  // The suffix counts changes to how the set is made (bump it when this function changes).
  const cached = join(repoRoot, "node_modules", ".cache", "adminkiosk", `envoy-api-${version}-1.binpb`);
  if (existsSync(cached)) return readFileSync(cached);
  const deps = join(xdsPackage, "deps");
  const dir = mkdtempSync(join(work, "envoy-api-"));
  for (const module of ["envoy-api", "xds", "googleapis"]) symlinkSync(join(deps, module), join(dir, module));
  mkdirSync(join(dir, "pgv", "validate"), { recursive: true });
  writeFileSync(join(dir, "pgv", "validate", "validate.proto"), withIgnoreEmpty(readFileSync(join(deps, "protoc-gen-validate", "validate", "validate.proto"), "utf8")));
  writeFileSync(join(dir, "buf.yaml"), "version: v2\nmodules:\n  - path: envoy-api\n  - path: xds\n  - path: googleapis\n  - path: pgv\n");
  const excluded = unbuildable(dir, ["envoy-api", "xds", "googleapis", "pgv"]).map((path) => `--exclude-path=${path}`);
  run(bufBin, ["build", ".", "--exclude-source-info", "-o", "envoy.binpb", ...excluded], dir);
  mkdirSync(dirname(cached), { recursive: true });
  copyFileSync(join(dir, "envoy.binpb"), `${cached}.${process.pid}`);
  renameSync(`${cached}.${process.pid}`, cached);
  return readFileSync(cached);
}

function withIgnoreEmpty(validateProto: string): string {
  const start = validateProto.indexOf("message StringRules {");
  if (start < 0) throw new Error("protoc-gen-validate's validate.proto has no StringRules; update envoyApiDescriptors()");
  if (validateProto.slice(start, validateProto.indexOf("message BytesRules", start)).includes("ignore_empty")) return validateProto;
  return validateProto.replace("message StringRules {", "message StringRules {\n    optional bool ignore_empty = 26;");
}

/** Files (module/path) that import, directly or not, a file no module has. */
function unbuildable(dir: string, modules: string[]): string[] {
  const files = new Map<string, string>();
  const walk = (path: string): string[] =>
    readdirSync(path, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(path, e.name)) : e.name.endsWith(".proto") ? [join(path, e.name)] : []));
  for (const module of modules) for (const file of walk(join(dir, module))) files.set(relative(join(dir, module), file), relative(dir, file));
  const verdict = new Map<string, boolean>();
  const builds = (name: string): boolean => {
    if (name.startsWith("google/protobuf/")) return true;
    const path = files.get(name);
    if (path === undefined) return false;
    const known = verdict.get(name);
    if (known !== undefined) return known;
    verdict.set(name, true); // an import cycle does not make a file unbuildable
    const imports = [...readFileSync(join(dir, path), "utf8").matchAll(/^import\s+(?:public\s+|weak\s+)?"([^"]+)"/gm)].map((m) => m[1] ?? "");
    const ok = imports.every(builds);
    verdict.set(name, ok);
    return ok;
  };
  return [...files].filter(([name]) => !builds(name)).map(([, path]) => path);
}

// ---- Our contracts ----

interface Rpc {
  path: string;
  kind: DescMethod["methodKind"];
  /** A unary read that is safe to retry. */
  read: boolean;
  public: boolean;
  rest: { method: string; path: string }[];
}

interface ProtoService {
  name: string;
  /** The service folder that implements it: adminkiosk.<owner>.v1. */
  owner: string;
  deployed: boolean;
  rpcs: Rpc[];
}

function isRead(method: DescMethod): boolean {
  if (method.methodKind !== "unary") return false;
  if (method.idempotency !== MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN) return true;
  return /^(Get|List)[A-Z]/.test(method.name) || method.name === "WhoAmI";
}

function restBindings(rule: HttpRule): { method: string; path: string }[] {
  const { pattern } = rule;
  const own =
    pattern.case === undefined ? [] : pattern.case === "custom" ? [{ method: pattern.value.kind, path: pattern.value.path }] : [{ method: pattern.case.toUpperCase(), path: pattern.value }];
  return [...own, ...rule.additionalBindings.flatMap(restBindings)];
}

/** A concrete path for a google.api.http template: /v1/users/{user_id}:setPassword → /v1/users/x:setPassword. */
const samplePath = (template: string) => template.replace(/\{[^}=]+(?:=([^}]*))?\}/g, (_, pattern: string | undefined) => (pattern ?? "*").replace(/\*\*?/g, "x"));

function protoServices(registry: FileRegistry): ProtoService[] {
  const services: ProtoService[] = [];
  for (const file of registry.files) {
    const owner = /^adminkiosk\.([a-z0-9_]+)\.v\d+\w*$/.exec(file.proto.package)?.[1];
    if (!owner) continue;
    for (const service of file.services) {
      services.push({
        name: service.typeName,
        owner,
        deployed: serviceEntry(repoRoot, owner) !== undefined,
        rpcs: service.methods.map((method) => ({
          path: `/${service.typeName}/${method.name}`,
          kind: method.methodKind,
          read: isRead(method),
          public: getOption(method, access).public,
          rest: hasOption(method, http) ? restBindings(getOption(method, http)) : [],
        })),
      });
    }
  }
  return services;
}

// ---- protoc-gen-validate: the rules Envoy checks when it loads a config ----

/**
 * Checks the decoded config against the (validate.rules) and (validate.required) options
 * in Envoy's protos, and refuses deprecated fields. A subset of protoc-gen-validate:
 * required messages and oneofs, string and bytes lengths, prefixes and sets, header-name
 * and header-value patterns, numeric and duration bounds, defined enums, list and map
 * sizes, required Anys. Regex patterns and timestamps are not checked.
 */
function validationProblems(registry: FileRegistry, root: ReflectMessage): string[] {
  const rulesExt = registry.getExtension("validate.rules");
  const requiredExt = registry.getExtension("validate.required");
  const rulesSchema = registry.getMessage("validate.FieldRules");
  if (!rulesExt || !requiredExt || !rulesSchema) throw new Error("Envoy's descriptor set lacks protoc-gen-validate's validate.proto");
  const problems: string[] = [];
  const rulesOf = (field: DescField): JsonObject | undefined => {
    if (!hasOption(field, rulesExt)) return undefined;
    const rules = getOption(field, rulesExt);
    return isMessage(rules, rulesSchema) ? obj(toJson(rulesSchema, rules, { useProtoFieldName: true })) : undefined;
  };

  // List items are named by their name field where they have one: clusters[auth].
  const nameOf = (m: ReflectMessage): string | undefined => {
    const name = m.desc.fields.find((f) => f.name === "name" && f.fieldKind === "scalar");
    const value = name ? m.get(name) : undefined;
    return typeof value === "string" && value !== "" ? value : undefined;
  };

  const visit = (m: ReflectMessage, path: string) => {
    if (isMessage(m.message, AnySchema)) {
      const unpacked = anyUnpack(m.message, registry);
      const schema = registry.getMessage(m.message.typeUrl.replace(/^.*\//, ""));
      if (unpacked && schema) visit(reflect(schema, unpacked), path);
      return;
    }
    for (const oneof of m.desc.oneofs) {
      if (hasOption(oneof, requiredExt) && getOption(oneof, requiredExt) === true && !oneof.fields.some((f) => m.isSet(f))) {
        problems.push(`${path || "the root"}: one of ${oneof.fields.map((f) => f.name).join(", ")} is required`);
      }
    }
    for (const field of m.desc.fields) {
      const at = path ? `${path}.${field.name}` : field.name;
      const set = m.isSet(field);
      if (set && field.deprecated) problems.push(`${at} is deprecated`);
      const rules = rulesOf(field);
      if (rules) checkField(m, field, rules, at);
      if (!set) continue;
      if (field.fieldKind === "message") visit(m.get(field), at);
      if (field.fieldKind === "list") [...m.get(field)].forEach((item, i) => isReflectMessage(item) && visit(item, `${at}[${nameOf(item) ?? i}]`));
      if (field.fieldKind === "map") for (const [key, value] of m.get(field)) if (isReflectMessage(value)) visit(value, `${at}.${String(key)}`);
    }
  };

  const checkField = (m: ReflectMessage, field: DescField, rules: JsonObject, at: string) => {
    const set = m.isSet(field);
    // A oneof member's rules apply only when it is the member set.
    if (!set && field.oneof) return;
    const required = [rules["message"], rules["duration"], rules["any"], rules["timestamp"]].some((r) => obj(r)["required"] === true);
    if (required && !set) problems.push(`${at} is required`);
    if (field.fieldKind === "list") {
      const list = m.get(field);
      const r = obj(rules["repeated"]);
      bounds(list.size, { gte: r["min_items"], lte: r["max_items"] }, `${at} has ${list.size} items`);
      if (isObject(r["items"])) [...list].forEach((item, i) => checkValue(item, obj(r["items"]), `${at}[${i}]`, field));
    } else if (field.fieldKind === "map") {
      const map = m.get(field);
      const r = obj(rules["map"]);
      bounds(map.size, { gte: r["min_pairs"], lte: r["max_pairs"] }, `${at} has ${map.size} entries`);
      if (isObject(r["values"])) for (const [key, value] of map) checkValue(value, obj(r["values"]), `${at}.${String(key)}`, field);
    } else if (field.fieldKind !== "message" || set) {
      checkValue(m.get(field), rules, at, field);
    }
  };

  const checkValue = (value: unknown, rules: JsonObject, at: string, field: DescField) => {
    if (isReflectMessage(value)) {
      const name = value.desc.typeName;
      const scalar = (fieldName: string) => {
        const f = value.desc.fields.find((candidate) => candidate.name === fieldName);
        return f ? Number(value.get(f) ?? 0) : 0;
      };
      if (name === "google.protobuf.Duration") {
        const secs = scalar("seconds") + scalar("nanos") / 1e9;
        const r = obj(rules["duration"]);
        bounds(secs, { gt: seconds(r["gt"]), gte: seconds(r["gte"]), lt: seconds(r["lt"]), lte: seconds(r["lte"]) }, `${at} is ${secs}s`);
      } else if (name === "google.protobuf.Any") {
        const typeUrl = isMessage(value.message, AnySchema) ? value.message.typeUrl : "";
        const allowed = arr(obj(rules["any"])["in"]);
        if (allowed.length > 0 && !allowed.includes(typeUrl)) problems.push(`${at}: @type ${typeUrl} is not one of ${allowed.join(", ")}`);
      } else if (name.startsWith("google.protobuf.") && name.endsWith("Value") && value.desc.fields[0]) {
        // Wrappers (UInt32Value...) are held to the rules of their value.
        checkValue(value.get(value.desc.fields[0]), rules, at, value.desc.fields[0]);
      }
      return;
    }
    if (typeof value === "string") return checkString(value, obj(rules["string"]), at);
    if (value instanceof Uint8Array) {
      const r = obj(rules["bytes"]);
      return bounds(value.length, { gte: r["min_len"], lte: r["max_len"] }, `${at} has ${value.length} bytes`);
    }
    if (typeof value === "number" || typeof value === "bigint") {
      const kind = Object.keys(rules).find((k) => k !== "message") ?? "";
      const r = obj(rules[kind]);
      if (kind === "enum" && r["defined_only"] === true && field.enum && !field.enum.values.some((v) => v.number === Number(value))) {
        problems.push(`${at} is ${value}, not a value of ${field.enum.typeName}`);
      }
      bounds(Number(value), { gt: r["gt"], gte: r["gte"], lt: r["lt"], lte: r["lte"] }, `${at} is ${value}`);
      const allowed = arr(r["in"]).map(Number);
      if (allowed.length > 0 && !allowed.includes(Number(value))) problems.push(`${at} is ${value}, not one of ${allowed.join(", ")}`);
      if (arr(r["not_in"]).map(Number).includes(Number(value))) problems.push(`${at} must not be ${value}`);
    }
  };

  const checkString = (value: string, r: JsonObject, at: string) => {
    if (r["ignore_empty"] === true && value === "") return;
    const chars = [...value].length;
    const bytes = Buffer.byteLength(value);
    bounds(chars, { gte: r["min_len"], lte: r["max_len"] }, `${at} ("${value}") has ${chars} characters`);
    bounds(bytes, { gte: r["min_bytes"], lte: r["max_bytes"] }, `${at} ("${value}") has ${bytes} bytes`);
    const prefix = str(r["prefix"]);
    if (prefix !== undefined && !value.startsWith(prefix)) problems.push(`${at} ("${value}") must start with "${prefix}"`);
    if (arr(r["in"]).length > 0 && !arr(r["in"]).includes(value)) problems.push(`${at} ("${value}") is not one of ${arr(r["in"]).join(", ")}`);
    if (arr(r["not_in"]).includes(value)) problems.push(`${at} ("${value}") is not allowed`);
    const strict = r["strict"] !== false;
    const headerName = strict ? /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/ : /^[^\0\r\n]*$/;
    const headerValue = strict ? /^[^\0-\x08\x0A-\x1F\x7F]*$/ : /^[^\0\r\n]*$/;
    if (r["well_known_regex"] === "HTTP_HEADER_NAME" && !headerName.test(value)) problems.push(`${at} ("${value}") is not a valid header name`);
    if (r["well_known_regex"] === "HTTP_HEADER_VALUE" && !headerValue.test(value)) problems.push(`${at} is not a valid header value`);
  };

  const bounds = (n: number, b: { gt?: JsonValue | number; gte?: JsonValue | number; lt?: JsonValue | number; lte?: JsonValue | number }, what: string) => {
    const num = (v: JsonValue | number | undefined) => (v === undefined || v === null ? undefined : Number(v));
    const [gt, gte, lt, lte] = [num(b.gt), num(b.gte), num(b.lt), num(b.lte)];
    const low = gt !== undefined ? n > gt : gte !== undefined ? n >= gte : true;
    const high = lt !== undefined ? n < lt : lte !== undefined ? n <= lte : true;
    const lower = gt ?? gte;
    const upper = lt ?? lte;
    // protoc-gen-validate: a lower bound above the upper one means "outside the range".
    const ok = lower !== undefined && upper !== undefined && lower > upper ? low || high : low && high;
    if (!ok) problems.push(`${what}; it must be ${[gt !== undefined && `> ${gt}`, gte !== undefined && `>= ${gte}`, lt !== undefined && `< ${lt}`, lte !== undefined && `<= ${lte}`].filter(Boolean).join(" and ")}`);
  };

  visit(root, "");
  return problems;
}

// ---- Loading envoy.yaml ----

interface Loaded {
  /** The config as Envoy reads it, normalized: proto field names, Anys expanded, aliases resolved. */
  json: JsonObject;
  message: ReflectMessage;
}

/** Decodes YAML as Envoy does (YAML → JSON → proto), refusing unknown fields and unknown @types. */
function decodeBootstrap(registry: FileRegistry, yamlValue: JsonValue): Loaded {
  const schema: DescMessage | undefined = registry.getMessage("envoy.config.bootstrap.v3.Bootstrap");
  if (!schema) throw new Error("Envoy's descriptor set has no envoy.config.bootstrap.v3.Bootstrap");
  let message;
  try {
    message = fromJson(schema, yamlValue, { registry });
  } catch (err) {
    throw new Error(`${configFile}: not a valid Envoy v3 Bootstrap: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { json: obj(toJson(schema, message, { registry, useProtoFieldName: true })), message: reflect(schema, message) };
}

function readYaml(text: string): JsonValue {
  try {
    // "<<" merge keys stay plain keys here (and so fail as unknown fields): the config
    // shares settings through whole-value aliases, which Envoy's YAML loader resolves.
    const value: JsonValue = parse(text, { merge: false });
    return value;
  } catch (err) {
    throw new Error(`${configFile} is not valid YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
}

// ---- The parts of the config the checks read ----

interface Edge {
  json: JsonObject;
  hcm: JsonObject;
  filters: JsonObject[];
  virtualHost: JsonObject;
  routes: JsonObject[];
  clusters: JsonObject[];
}

const edgePort = 8000;
/** Envoy's admin interface: on the loopback only (it can reconfigure and stop Envoy). */
const adminPort = 9902;
/** The listener that passes the network only Prometheus' stats and the probes' paths to the admin. */
const opsPort = 9901;
const opsPaths = ["/stats/prometheus", "/ready", "/server_info"];
const adminCluster = "envoy_admin";
/** Where Envoy sends its spans (OTLP/gRPC): the OpenTelemetry Collector, as docker-compose names it. */
const tracingCluster = { name: "otel_collector", address: "otel-collector", port: 4317 };
/**
 * The proxies in front of the edge whose x-forwarded-for entries it trusts: Istio's ingress
 * gateway (istio/base/edge). Change it only with the deployment, and docs/deployment.md.
 */
const trustedHops = 1;
/** Services only the platform's own services call, inside the network: never routed at the edge. */
const inClusterOnly = new Set(["adminkiosk.auth.v1.ServiceIdentityService"]);
const loopback = (address: JsonValue | undefined) => typeof address === "string" && (/^127\./.test(address) || address === "::1");

function edgeOf(json: JsonObject): Edge {
  const listener = objs(obj(json["static_resources"])["listeners"]).find((l) => obj(obj(l["address"])["socket_address"])["port_value"] === edgePort);
  if (!listener) throw new Error(`${configFile}: no listener on port ${edgePort}`);
  const hcm = objs(listener["filter_chains"])
    .flatMap((chain) => objs(chain["filters"]))
    .map((f) => obj(f["typed_config"]))
    .find((c) => typeOf(c) === "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager");
  if (!hcm) throw new Error(`${configFile}: the listener on ${edgePort} has no HttpConnectionManager`);
  const virtualHost = objs(obj(hcm["route_config"])["virtual_hosts"]).find((vh) => arr(vh["domains"]).includes("*"));
  if (!virtualHost) throw new Error(`${configFile}: no inline route_config with a virtual host for domains ["*"]`);
  return {
    json,
    hcm,
    filters: objs(hcm["http_filters"]),
    virtualHost,
    routes: objs(virtualHost["routes"]),
    clusters: objs(obj(json["static_resources"])["clusters"]),
  };
}

const filterConfig = (edge: Edge, type: string) => obj(edge.filters.find((f) => typeOf(f["typed_config"]) === type)?.["typed_config"]);

// ---- Route matching, as Envoy's RouteMatch does it (the parts this config uses) ----

interface Request {
  method: string;
  path: string;
  grpc: boolean;
}

const grpcCall = (path: string): Request => ({ method: "POST", path, grpc: true });

function describeMatch(match: JsonObject): string {
  const kind = ["path", "prefix", "path_separated_prefix"].find((k) => k in match);
  const where = kind ? str(match[kind]) : `regex ${str(obj(match["safe_regex"])["regex"]) ?? JSON.stringify(match)}`;
  const method = objs(match["headers"]).find((h) => h["name"] === ":method");
  return method ? `${str(obj(method["string_match"])["exact"]) ?? ""} ${where ?? ""}` : (where ?? "");
}

function stringMatches(m: JsonObject, value: string | undefined): boolean {
  if (value === undefined) return false;
  const v = m["ignore_case"] === true ? value.toLowerCase() : value;
  const s = (key: string) => (m["ignore_case"] === true ? str(m[key])?.toLowerCase() : str(m[key]));
  if ("exact" in m) return v === s("exact");
  if ("prefix" in m) return v.startsWith(s("prefix") ?? "");
  if ("suffix" in m) return v.endsWith(s("suffix") ?? "");
  if ("contains" in m) return v.includes(s("contains") ?? "");
  if ("safe_regex" in m) return new RegExp(`^(?:${str(obj(m["safe_regex"])["regex"]) ?? ""})$`).test(value);
  throw new Error(`cannot evaluate string_match ${JSON.stringify(m)}`);
}

function matches(match: JsonObject, req: Request): boolean {
  for (const key of Object.keys(match)) {
    if (!["prefix", "path", "safe_regex", "path_separated_prefix", "headers", "grpc", "case_sensitive"].includes(key)) {
      throw new Error(`${configFile}: the test cannot evaluate route match "${key}" (${JSON.stringify(match)}); teach matches() about it`);
    }
  }
  const caseless = match["case_sensitive"] === false;
  const path = caseless ? req.path.toLowerCase() : req.path;
  const fold = (s: string) => (caseless ? s.toLowerCase() : s);
  let ok = false;
  if (typeof match["prefix"] === "string") ok = path.startsWith(fold(match["prefix"]));
  else if (typeof match["path"] === "string") ok = path === fold(match["path"]);
  else if (typeof match["path_separated_prefix"] === "string") {
    const p = fold(match["path_separated_prefix"]);
    ok = path === p || path.startsWith(`${p}/`);
  } else if (isObject(match["safe_regex"])) ok = new RegExp(`^(?:${str(match["safe_regex"]["regex"]) ?? ""})$`).test(req.path);
  if (!ok) return false;
  if ("grpc" in match && !req.grpc) return false;
  return objs(match["headers"]).every((h) => {
    const name = str(h["name"]);
    const value = name === ":method" ? req.method : name === "content-type" ? (req.grpc ? "application/grpc" : "application/json") : undefined;
    const found = "present_match" in h ? (value !== undefined) === (h["present_match"] !== false) : stringMatches(obj(h["string_match"]), value);
    return h["invert_match"] === true ? !found : found;
  });
}

const firstRoute = (edge: Edge, req: Request) => edge.routes.find((r) => matches(obj(r["match"]), req));

function routeClusters(route: JsonObject): string[] {
  const action = obj(route["route"]);
  return [str(action["cluster"]), ...objs(obj(action["weighted_clusters"])["clusters"]).map((c) => str(c["name"]))].filter((c): c is string => c !== undefined);
}

// ---- The checks; each returns what is wrong, one line per problem ----

/**
 * Tracing (issue 19): the edge's HttpConnectionManager traces with envoy.tracers.opentelemetry,
 * sampling some but not all new traces, exporting by gRPC through a cluster that reaches the
 * Collector over HTTP/2; no route sends callers there.
 */
function tracingProblems(edge: Edge): string[] {
  const problems: string[] = [];
  const at = `${configFile}: the edge's tracing`;
  const tracing = obj(edge.hcm["tracing"]);
  if (!isObject(edge.hcm["tracing"])) return [`${at} is missing (HttpConnectionManager.tracing with the OpenTelemetry provider)`];
  const provider = obj(tracing["provider"]);
  if (provider["name"] !== "envoy.tracers.opentelemetry" || typeOf(provider["typed_config"]) !== "envoy.config.trace.v3.OpenTelemetryConfig")
    problems.push(`${at} must use envoy.tracers.opentelemetry with an OpenTelemetryConfig (it has ${String(provider["name"])})`);
  const otel = obj(provider["typed_config"]);
  const cluster = str(obj(obj(otel["grpc_service"])["envoy_grpc"])["cluster_name"]);
  if (cluster !== tracingCluster.name) problems.push(`${at} must export through cluster "${tracingCluster.name}" (grpc_service.envoy_grpc), not ${String(cluster)}`);
  if (!str(otel["service_name"])) problems.push(`${at} must name its service (service_name), or its spans are "unknown_service"`);
  const sampling = Number(obj(tracing["random_sampling"])["value"] ?? 100);
  if (!(sampling > 0 && sampling < 100)) problems.push(`${at} samples ${sampling} % of new traces; between 0 and 100 exclusive (every request traced at the edge is the whole fleet's traffic)`);
  const defined = edge.clusters.find((c) => c["name"] === tracingCluster.name);
  if (!defined) problems.push(`${configFile}: no cluster "${tracingCluster.name}" for the spans`);
  else {
    const addresses = objs(obj(defined["load_assignment"])["endpoints"])
      .flatMap((e) => objs(e["lb_endpoints"]))
      .map((e) => obj(obj(obj(e["endpoint"])["address"])["socket_address"]));
    if (!addresses.some((a) => a["address"] === tracingCluster.address && a["port_value"] === tracingCluster.port))
      problems.push(`${configFile}: cluster "${tracingCluster.name}" must reach ${tracingCluster.address}:${tracingCluster.port} (OTLP/gRPC)`);
    const options = obj(obj(defined["typed_extension_protocol_options"])["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]);
    if (!isObject(obj(options["explicit_http_config"])["http2_protocol_options"])) problems.push(`${configFile}: cluster "${tracingCluster.name}" must speak HTTP/2 (OTLP/gRPC)`);
  }
  for (const route of edge.routes)
    if (routeClusters(route).includes(tracingCluster.name)) problems.push(`${configFile}: route ${describeMatch(obj(route["match"]))} reaches the Collector; only Envoy's tracer may`);
  return problems;
}

function clusterProblems(edge: Edge, services: ProtoService[]): string[] {
  const problems: string[] = [];
  const defined = new Set(edge.clusters.map((c) => str(c["name"])));
  for (const route of edge.routes) {
    if ("cluster_header" in obj(route["route"])) problems.push(`${configFile}: route ${describeMatch(obj(route["match"]))} picks its cluster from a header; name it`);
    for (const cluster of routeClusters(route)) {
      if (!defined.has(cluster)) problems.push(`${configFile}: route ${describeMatch(obj(route["match"]))} → cluster "${cluster}" is not defined`);
    }
  }
  for (const provider of Object.values(obj(filterConfig(edge, "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication")["providers"]))) {
    const cluster = str(obj(obj(obj(provider)["remote_jwks"])["http_uri"])["cluster"]);
    if (cluster !== undefined && !defined.has(cluster)) problems.push(`${configFile}: jwt_authn fetches its JWKS through cluster "${cluster}", which is not defined`);
  }

  const deployed = [...new Set(services.filter((s) => s.deployed).map((s) => s.owner))];
  for (const name of deployed) {
    const spec = platformServices.find((s) => s.name === name);
    if (!spec) problems.push(`services/${name} exists but has no port in platformServices (packages/devstack/src/services.ts)`);
    if (!edge.clusters.some((c) => c["name"] === name)) problems.push(`${configFile}: no cluster "${name}" (services/${name}/src/main.ts exists); add one like auth's`);
  }
  for (const cluster of edge.clusters) {
    const name = str(cluster["name"]) ?? "";
    const at = `${configFile}: cluster "${name}"`;
    const spec = platformServices.find((s) => s.name === name);
    if (name === adminCluster || name === tracingCluster.name) continue; // checked by exposureProblems, tracingProblems
    if (!spec || serviceEntry(repoRoot, name) === undefined) {
      problems.push(`${at} is not a service that exists (no services/${name}/src/main.ts)`);
      continue;
    }
    const addresses = objs(obj(cluster["load_assignment"])["endpoints"])
      .flatMap((e) => objs(e["lb_endpoints"]))
      .map((e) => obj(obj(obj(e["endpoint"])["address"])["socket_address"]));
    if (!addresses.some((a) => a["address"] === name && a["port_value"] === spec.port)) {
      problems.push(`${at} must reach ${name}:${spec.port} (its docker-compose hostname and platformServices port), not ${addresses.map((a) => `${str(a["address"])}:${String(a["port_value"])}`).join(", ") || "nothing"}`);
    }
    if (cluster["type"] !== "STRICT_DNS") problems.push(`${at} must be STRICT_DNS (replicas behind one name)`);
    const options = obj(obj(cluster["typed_extension_protocol_options"])["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]);
    if (!isObject(obj(options["explicit_http_config"])["http2_protocol_options"])) {
      problems.push(`${at} does not enable HTTP/2 (typed_extension_protocol_options → HttpProtocolOptions explicit_http_config.http2_protocol_options); gRPC needs it`);
    }
    if (!objs(cluster["health_checks"]).some((h) => isObject(h["grpc_health_check"]))) problems.push(`${at} has no active gRPC health check (grpc_health_check)`);
    if (!isObject(cluster["outlier_detection"])) problems.push(`${at} has no outlier_detection`);
    if (objs(obj(cluster["circuit_breakers"])["thresholds"]).length === 0) problems.push(`${at} has no circuit_breakers thresholds`);
  }
  return problems;
}

function routeProblems(edge: Edge, services: ProtoService[]): string[] {
  const problems: string[] = [];
  const vhostRetries = isObject(edge.virtualHost["retry_policy"]);
  for (const service of services) {
    if (!service.deployed) {
      for (const rpc of service.rpcs) {
        const route = firstRoute(edge, grpcCall(rpc.path));
        if (route) problems.push(`${configFile}: routes ${rpc.path}, but services/${service.owner}/src/main.ts does not exist yet, so it has no cluster`);
      }
      continue;
    }
    if (inClusterOnly.has(service.name)) {
      for (const rpc of service.rpcs) {
        if (firstRoute(edge, grpcCall(rpc.path))) problems.push(`${configFile}: routes ${rpc.path}, which is for the platform's own services and not routed at the public edge`);
      }
      continue;
    }
    const prefix = `/${service.name}/`;
    if (!edge.routes.some((r) => obj(r["match"])["prefix"] === prefix && routeClusters(r).includes(service.owner))) {
      problems.push(`${configFile}: no route with prefix ${prefix} → cluster "${service.owner}"`);
    }
    for (const rpc of service.rpcs) {
      const route = firstRoute(edge, grpcCall(rpc.path));
      if (!route) {
        problems.push(`${configFile}: no route for ${rpc.path}`);
        continue;
      }
      const at = `${configFile}: ${rpc.path} (${rpc.kind}) is routed by ${describeMatch(obj(route["match"]))}`;
      const action = obj(route["route"]);
      if (!routeClusters(route).includes(service.owner) || routeClusters(route).length !== 1) problems.push(`${at} to ${routeClusters(route).join(", ")}, not cluster "${service.owner}"`);
      const timeout = seconds(action["timeout"]);
      if (rpc.kind === "unary") {
        if (!timeout) problems.push(`${at} without a timeout (unary calls need one; Envoy's default is 15s, say so)`);
      } else {
        if (timeout !== 0) problems.push(`${at} with timeout ${String(action["timeout"] ?? "15s (default)")}; streams need "timeout: 0s"`);
        if (!seconds(action["idle_timeout"])) problems.push(`${at} without an idle_timeout; a stream with "timeout: 0s" needs one`);
      }
      const retries = isObject(action["retry_policy"]) || vhostRetries;
      if (retries && !rpc.read) problems.push(`${at} with a retry_policy, but it is not an idempotent read`);
      if (!retries && rpc.read) problems.push(`${at} without a retry_policy, but it is an idempotent read`);
      if (isObject(action["retry_policy"]) && !(str(obj(action["retry_policy"])["retry_on"]) ?? "").split(",").includes("unavailable")) {
        problems.push(`${at}: its retry_policy does not retry on "unavailable"`);
      }
    }
    // Routes matched before the transcoder rewrites the path (CORS, rate limit), and for
    // REST calls that match no binding.
    for (const rest of service.rpcs.flatMap((rpc) => rpc.rest)) {
      const route = firstRoute(edge, { method: rest.method, path: samplePath(rest.path), grpc: false });
      if (!route || !routeClusters(route).includes(service.owner)) {
        problems.push(`${configFile}: REST ${rest.method} ${rest.path} (${service.name}) is ${route ? `routed to ${routeClusters(route).join(", ")}` : "not routed"}; route its prefix to cluster "${service.owner}"`);
      }
    }
  }
  return problems;
}

function transcoderProblems(edge: Edge, services: ProtoService[], built: FileRegistry): string[] {
  const problems: string[] = [];
  const config = filterConfig(edge, "envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder");
  const at = `${configFile}: grpc_json_transcoder`;
  if (config["proto_descriptor"] !== descriptorsInEnvoy) problems.push(`${at} must read proto_descriptor ${descriptorsInEnvoy} (what npm run build:envoy builds, mounted there)`);
  if (config["convert_grpc_status"] !== true) problems.push(`${at} must set convert_grpc_status: true`);
  if (!isObject(config["print_options"])) problems.push(`${at} has no print_options`);
  const listed = arr(config["services"]).map(String);
  const expected = services.filter((s) => s.deployed && s.rpcs.some((r) => r.rest.length > 0)).map((s) => s.name);
  for (const name of expected.filter((n) => !listed.includes(n))) problems.push(`${at}: services lacks ${name} (it has google.api.http bindings)`);
  for (const name of listed.filter((n) => !expected.includes(n))) {
    problems.push(`${at}: services lists ${name}, which is not a deployed service with google.api.http bindings`);
  }
  for (const name of listed.filter((n) => !built.getService(n))) problems.push(`${at}: ${name} is not in the descriptor set scripts/build-envoy-descriptors.sh builds (Envoy would not start)`);
  return problems;
}

/** Whether a jwt_authn requirement lets a request without a token through. */
function allowsMissing(requires: JsonValue | undefined): boolean {
  if (!isObject(requires)) return true;
  if ("allow_missing" in requires || "allow_missing_or_failed" in requires) return true;
  if (isObject(requires["requires_any"])) return objs(requires["requires_any"]["requirements"]).some(allowsMissing);
  if (isObject(requires["requires_all"])) return objs(requires["requires_all"]["requirements"]).every(allowsMissing);
  return false;
}

function jwtProblems(edge: Edge, services: ProtoService[]): string[] {
  const problems: string[] = [];
  const config = filterConfig(edge, "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication");
  const at = `${configFile}: jwt_authn`;
  const providers = obj(config["providers"]);
  const auth = platformServices.find((s) => s.name === "auth");
  for (const [name, value] of Object.entries(providers)) {
    const p = obj(value);
    const jwks = obj(p["remote_jwks"]);
    const where = `${at} provider ${name}`;
    if (p["issuer"] !== tokenIssuer) problems.push(`${where}: issuer must be "${tokenIssuer}"`);
    if (!arr(p["audiences"]).includes(tokenAudience)) problems.push(`${where}: audiences must include "${tokenAudience}"`);
    if (obj(jwks["http_uri"])["uri"] !== `http://auth:${auth?.port ?? 7001}/.well-known/jwks.json`) problems.push(`${where}: remote_jwks must fetch http://auth:${auth?.port ?? 7001}/.well-known/jwks.json`);
    if (!seconds(jwks["cache_duration"])) problems.push(`${where}: remote_jwks needs a cache_duration`);
    if (p["forward"] !== true) problems.push(`${where}: forward must be true (every service verifies the token again)`);
  }
  if (Object.keys(providers).length === 0) problems.push(`${at} has no providers`);
  const rules = objs(config["rules"]);
  const named = (requires: JsonValue | undefined): string[] =>
    !isObject(requires)
      ? []
      : [str(requires["provider_name"]), ...[...objs(obj(requires["requires_any"])["requirements"]), ...objs(obj(requires["requires_all"])["requirements"])].flatMap(named)].filter((n): n is string => n !== undefined);
  for (const name of rules.flatMap((r) => named(r["requires"]))) if (!(name in providers)) problems.push(`${at}: a rule requires provider "${name}", which is not defined`);
  if (isObject(config["requirement_map"]) || "filter_state_rules" in config) problems.push(`${at}: the test reads rules only; teach it requirement_map/filter_state_rules`);

  const firstRule = (req: Request) => rules.find((r) => matches(obj(r["match"]), req));
  const deployed = services.filter((s) => s.deployed && !inClusterOnly.has(s.name));
  const open: Request[] = [
    { method: "GET", path: "/.well-known/jwks.json", grpc: false },
    grpcCall("/grpc.health.v1.Health/Check"),
    grpcCall("/grpc.health.v1.Health/Watch"),
    ...deployed.flatMap((s) => s.rpcs.filter((r) => r.public).flatMap((r) => [grpcCall(r.path), ...r.rest.map((b) => ({ method: b.method, path: samplePath(b.path), grpc: false }))])),
  ];
  const guarded: Request[] = [
    { method: "GET", path: "/somewhere/else", grpc: false },
    ...deployed.flatMap((s) => s.rpcs.filter((r) => !r.public).flatMap((r) => [grpcCall(r.path), ...r.rest.map((b) => ({ method: b.method, path: samplePath(b.path), grpc: false }))])),
  ];
  const describe = (req: Request) => (req.grpc ? req.path : `${req.method} ${req.path}`);
  // No matching rule means no requirement at all.
  const open_ = (req: Request) => {
    const rule = firstRule(req);
    return !rule || allowsMissing(rule["requires"]);
  };
  for (const req of open) if (!open_(req)) problems.push(`${at} requires a token for ${describe(req)}, which is public`);
  for (const req of guarded) if (open_(req)) problems.push(`${at} lets ${describe(req)} through without a token, but it is not public`);
  // Exactly those: every rule that lets a request without a token through must be the rule
  // some public request meets first.
  for (const rule of rules.filter((r) => allowsMissing(r["requires"]))) {
    if (!open.some((req) => firstRule(req) === rule)) problems.push(`${at} exempts ${describeMatch(obj(rule["match"]))}, which is not a public RPC, health or the JWKS path`);
  }
  return problems;
}

function filterOrderProblems(edge: Edge): string[] {
  const expected = [
    "envoy.filters.http.cors",
    "envoy.filters.http.local_ratelimit",
    "envoy.filters.http.jwt_authn",
    "envoy.filters.http.grpc_json_transcoder",
    "envoy.filters.http.grpc_web",
    "envoy.filters.http.router",
  ];
  const names = edge.filters.map((f) => str(f["name"]) ?? "");
  const problems = names.join(" → ") === expected.join(" → ") ? [] : [`${configFile}: http_filters run ${names.join(" → ")}; expected ${expected.join(" → ")}`];
  const rate = filterConfig(edge, "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit");
  for (const key of ["filter_enabled", "filter_enforced"]) {
    if (obj(obj(rate[key])["default_value"])["numerator"] === undefined) problems.push(`${configFile}: local_ratelimit ${key} is unset, so the filter does nothing`);
  }
  return problems;
}

function corsProblems(edge: Edge): string[] {
  const policy = obj(obj(edge.virtualHost["typed_per_filter_config"])["envoy.filters.http.cors"]);
  const at = `${configFile}: the CORS policy (virtual host typed_per_filter_config envoy.filters.http.cors)`;
  const list = (key: string) => (str(policy[key]) ?? "").split(",").map((h) => h.trim().toLowerCase());
  const problems: string[] = [];
  const origin = `http://localhost:${webPort}`;
  if (!objs(policy["allow_origin_string_match"]).some((m) => m["exact"] === origin)) problems.push(`${at} does not allow origin ${origin}`);
  const headers = ["authorization", "content-type", "connect-protocol-version", "connect-timeout-ms", "grpc-timeout", "x-grpc-web", "x-user-agent", "x-request-id"];
  for (const h of headers.filter((h) => !list("allow_headers").includes(h))) problems.push(`${at} does not allow header ${h}`);
  for (const h of ["grpc-status", "grpc-message", "x-request-id"].filter((h) => !list("expose_headers").includes(h))) problems.push(`${at} does not expose ${h}`);
  // auth's refresh cookie is for the app on the edge's own origin only.
  if (policy["allow_credentials"] === true) problems.push(`${at} allows credentials: another origin could use auth's refresh cookie`);
  if (list("allow_headers").includes("x-adminkiosk-session")) problems.push(`${at} allows x-adminkiosk-session: another origin could ask auth for cookie mode`);
  return problems;
}

function basicsProblems(edge: Edge): string[] {
  const problems: string[] = [];
  // AUTO is the default, so the normalized config leaves it out.
  if ((edge.hcm["codec_type"] ?? "AUTO") !== "AUTO") problems.push(`${configFile}: the edge listener must use codec_type AUTO (HTTP/1.1 and HTTP/2)`);
  if (edge.hcm["generate_request_id"] === false) problems.push(`${configFile}: generate_request_id must stay on`);
  const logs = objs(edge.hcm["access_log"]).map((l) => obj(l["typed_config"])).filter((c) => typeOf(c) === "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog");
  const formats = Object.values(obj(obj(logs[0]?.["log_format"])["json_format"])).map(String).join(" ");
  for (const op of ["%REQ(X-REQUEST-ID)%", "%REQ(:METHOD)%", "PATH)%", "%GRPC_STATUS", "%DURATION%", "%UPSTREAM_CLUSTER%"]) {
    if (!formats.includes(op)) problems.push(`${configFile}: the stdout JSON access log has no ${op}`);
  }
  return problems;
}

/** What the network can reach besides the edge's routes: the admin interface, reflection. */
function exposureProblems(edge: Edge): string[] {
  const problems: string[] = [];
  const admin = obj(obj(obj(edge.json["admin"])["address"])["socket_address"]);
  if (!loopback(admin["address"]) || admin["port_value"] !== adminPort) {
    problems.push(`${configFile}: the admin interface must listen on the loopback only, 127.0.0.1:${adminPort} (it listens on ${String(admin["address"])}:${String(admin["port_value"])}); it can reconfigure and stop Envoy`);
  }
  const cluster = edge.clusters.find((c) => c["name"] === adminCluster);
  const endpoints = objs(obj(cluster?.["load_assignment"])["endpoints"]).flatMap((e) => objs(e["lb_endpoints"])).map((e) => obj(obj(obj(e["endpoint"])["address"])["socket_address"]));
  if (!cluster || endpoints.length !== 1 || !endpoints.every((a) => loopback(a["address"]) && a["port_value"] === adminPort)) {
    problems.push(`${configFile}: cluster "${adminCluster}" must reach only the admin interface, 127.0.0.1:${adminPort}`);
  }
  for (const route of edge.routes) if (routeClusters(route).includes(adminCluster)) problems.push(`${configFile}: the edge routes ${describeMatch(obj(route["match"]))} to the admin interface`);
  // Every other listener: GET of the ops paths to the admin, anything else refused.
  const listeners = objs(obj(edge.json["static_resources"])["listeners"]);
  const ops = listeners.find((l) => obj(obj(l["address"])["socket_address"])["port_value"] === opsPort);
  if (!ops) problems.push(`${configFile}: no listener on ${opsPort} (Prometheus scrapes /stats/prometheus there, the probes read /ready and /server_info)`);
  for (const listener of listeners.filter((l) => obj(obj(l["address"])["socket_address"])["port_value"] !== edgePort)) {
    const name = str(listener["name"]) ?? "?";
    const hcms = objs(listener["filter_chains"]).flatMap((c) => objs(c["filters"])).map((f) => obj(f["typed_config"]));
    const routes = hcms.flatMap((h) => objs(obj(h["route_config"])["virtual_hosts"])).flatMap((vh) => objs(vh["routes"]));
    if (hcms.some((h) => typeOf(h) !== "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager" || !isObject(h["route_config"]))) {
      problems.push(`${configFile}: listener ${name} must be an HTTP connection manager with an inline route_config (the test reads its routes)`);
    }
    for (const path of opsPaths) {
      const route = routes.find((r) => matches(obj(r["match"]), { method: "GET", path, grpc: false }));
      if (listener === ops && (!route || !routeClusters(route).includes(adminCluster))) problems.push(`${configFile}: listener ${name} does not pass GET ${path} to the admin interface`);
    }
    for (const route of routes) {
      const match = obj(route["match"]);
      const methods = objs(match["headers"]).filter((h) => h["name"] === ":method").map((h) => str(obj(h["string_match"])["exact"]));
      const status = Number(obj(route["direct_response"])["status"] ?? 0);
      const refuses = isObject(route["direct_response"]) && status >= 400;
      const readsOpsPath = typeof match["path"] === "string" && opsPaths.includes(match["path"]) && methods.length === 1 && methods[0] === "GET" && routeClusters(route).join() === adminCluster;
      if (!refuses && !readsOpsPath) {
        problems.push(`${configFile}: listener ${name} route ${describeMatch(match)} exposes more than GET ${opsPaths.join(", ")} of the admin interface`);
      }
    }
  }
  // Reflection would list the whole API to anyone; tools use it inside the network.
  for (const path of ["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"]) {
    const route = firstRoute(edge, grpcCall(path));
    if (route) problems.push(`${configFile}: the edge routes ${path} (by ${describeMatch(obj(route["match"]))}); server reflection stays inside the network`);
  }
  return problems;
}

/** The client address: which x-forwarded-for entries the edge trusts, and how auth learns it. */
function clientAddressProblems(edge: Edge): string[] {
  const problems: string[] = [];
  const at = `${configFile}: the edge listener`;
  if (edge.hcm["use_remote_address"] !== true) problems.push(`${at} must set use_remote_address: true (the edge decides the client address)`);
  const hops = edge.hcm["xff_num_trusted_hops"] ?? 0;
  if (hops !== trustedHops) problems.push(`${at} trusts ${String(hops)} x-forwarded-for hops; the deployment has ${trustedHops} (Istio's ingress gateway)`);
  if ("original_ip_detection_extensions" in edge.hcm) problems.push(`${at}: original_ip_detection_extensions replace xff_num_trusted_hops; teach the test about them`);
  const routeConfig = obj(edge.hcm["route_config"]);
  const set = objs(routeConfig["request_headers_to_add"]).filter((o) => str(obj(o["header"])["key"])?.toLowerCase() === clientAddressHeader);
  const where = `${configFile}: route_config request_headers_to_add`;
  if (set.length !== 1) problems.push(`${where} must set ${clientAddressHeader} once (auth's client address, services/auth/src/client-address.ts)`);
  for (const option of set) {
    if (obj(option["header"])["value"] !== "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%") problems.push(`${where}: ${clientAddressHeader} must be %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`);
    if (option["append_action"] !== "OVERWRITE_IF_EXISTS_OR_ADD") problems.push(`${where}: ${clientAddressHeader} must replace what the caller sent (append_action: OVERWRITE_IF_EXISTS_OR_ADD)`);
    if ("append" in option || "keep_empty_value" in option) problems.push(`${where}: ${clientAddressHeader} must set neither append nor keep_empty_value`);
  }
  // Nothing closer to the request may change or drop it.
  const scopes = [edge.virtualHost, ...edge.routes];
  for (const scope of scopes) {
    const touches = [...objs(scope["request_headers_to_add"]).map((o) => str(obj(o["header"])["key"])), ...arr(scope["request_headers_to_remove"]).map(String)];
    if (touches.some((k) => k?.toLowerCase() === clientAddressHeader)) problems.push(`${configFile}: ${scope === edge.virtualHost ? "the virtual host" : `route ${describeMatch(obj(scope["match"]))}`} changes ${clientAddressHeader}`);
  }
  return problems;
}

// ---- The tests ----

let envoyRegistry: FileRegistry;
let built: FileRegistry;
let builtPath: string;
let services: ProtoService[];
let yamlValue: JsonValue;
let loaded: Loaded;
let edge: Edge;

beforeAll(() => {
  envoyRegistry = createFileRegistry(fromBinary(FileDescriptorSetSchema, envoyApiDescriptors()));
  builtPath = join(work, "descriptors.binpb");
  run("bash", [join(repoRoot, "scripts", "build-envoy-descriptors.sh"), builtPath], repoRoot);
  built = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(builtPath)));
  services = protoServices(built);
  yamlValue = readYaml(readFileSync(join(repoRoot, configFile), "utf8"));
  loaded = decodeBootstrap(envoyRegistry, yamlValue);
  edge = edgeOf(loaded.json);
}, 90_000);

describe(configFile, () => {
  // Decoding happens once, before these tests: an unknown field or @type fails them all
  // with the reason. Envoy picks a filter by its @type; a name that says otherwise misleads.
  it("decodes as an Envoy v3 Bootstrap, each HTTP filter's @type matching its name", () => {
    fail(
      edge.filters
        .filter((f) => !typeOf(f["typed_config"]).startsWith(`${String(f["name"]).replace("envoy.filters.http.", "envoy.extensions.filters.http.")}.v3.`))
        .map((f) => `${configFile}: HTTP filter ${String(f["name"])} is configured with ${typeOf(f["typed_config"]) || "no typed_config"}`),
    );
  });

  it("meets the protoc-gen-validate rules Envoy enforces and uses no deprecated field", () => {
    fail(validationProblems(envoyRegistry, loaded.message).map((p) => `${configFile}: ${p}`));
  });

  it("runs the HTTP filters in order, with the rate limit switched on", () => fail(filterOrderProblems(edge)));

  it("listens on 8000 for HTTP/1.1 and HTTP/2 and logs JSON to stdout", () => fail(basicsProblems(edge)));

  it("keeps the admin interface on the loopback, passes only stats and probes on 9901, and does not route reflection", () => fail(exposureProblems(edge)));

  it("trusts exactly the deployment's proxy hops and hands auth the client address in a header no caller can set", () => fail(clientAddressProblems(edge)));

  it("routes only to clusters it defines, one per existing service, each speaking HTTP/2 with health checks", () => fail(clusterProblems(edge, services)));

  it("traces requests with the OpenTelemetry tracer, sending spans over HTTP/2 to the Collector, which no route reaches", () => fail(tracingProblems(edge)));

  it("routes every RPC of every existing service to its cluster, with deadlines, streams unbounded and only reads retried", () => {
    expect(services.filter((s) => s.deployed).length, "deployed services found in proto/").toBeGreaterThan(0);
    fail(routeProblems(edge, services));
  });

  it("transcodes exactly the deployed services with REST bindings, from the descriptor set the build script makes", () => {
    fail(transcoderProblems(edge, services, built));
  });

  it("requires a token everywhere except the public RPCs, health, reflection and the JWKS", () => {
    expect(services.flatMap((s) => s.rpcs).filter((r) => r.public).length, "public RPCs found in proto/").toBeGreaterThan(0);
    fail(jwtProblems(edge, services));
  });

  it("lets the admin web call it with Connect and gRPC-Web", () => fail(corsProblems(edge)));
});

describe("the checks of envoy/envoy.yaml", () => {
  // Each breaks a copy of the real config one way and expects the problem to be named.
  const broken = (edit: (config: JsonObject) => void): JsonValue => {
    const copy = structuredClone(obj(yamlValue));
    edit(copy);
    return copy;
  };
  const authCluster = (config: JsonObject) => objs(obj(config["static_resources"])["clusters"]).find((c) => c["name"] === "auth") ?? {};

  it("refuse an unknown field", () => {
    const config = broken((c) => void (authCluster(c)["conect_timeout"] = "2s"));
    expect(() => decodeBootstrap(envoyRegistry, config)).toThrow(/envoy\/envoy\.yaml: not a valid Envoy v3 Bootstrap: .*conect_timeout/);
  });

  it("refuse an unknown @type", () => {
    const config = broken((c) => {
      const router = objs(edgeOf(c).hcm["http_filters"]).find((f) => f["name"] === "envoy.filters.http.router");
      obj(router?.["typed_config"])["@type"] = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr";
    });
    expect(() => decodeBootstrap(envoyRegistry, config)).toThrow(/Routr/);
  });

  it("refuse a route to an undefined cluster", () => {
    const config = broken((c) => {
      const route = objs(edgeOf(c).virtualHost["routes"]).find((r) => obj(r["match"])["prefix"] === "/adminkiosk.auth.v1.UserService/");
      obj(route?.["route"])["cluster"] = "authh";
    });
    expect(clusterProblems(edgeOf(decodeBootstrap(envoyRegistry, config).json), services)).toContain(
      `${configFile}: route /adminkiosk.auth.v1.UserService/ → cluster "authh" is not defined`,
    );
  });

  it("refuse a missing required field", () => {
    const config = broken((c) => void delete edgeOf(c).hcm["stat_prefix"]);
    expect(validationProblems(envoyRegistry, decodeBootstrap(envoyRegistry, config).message).join("\n")).toMatch(/stat_prefix .*has 0 characters/);
  });

  it("refuse an admin interface off the loopback, more of it on the ops listener, and reflection at the edge", () => {
    const config = broken((c) => {
      obj(obj(obj(c["admin"])["address"])["socket_address"])["address"] = "0.0.0.0";
      const ops = objs(obj(c["static_resources"])["listeners"]).find((l) => l["name"] === "ops");
      const hcm = obj(objs(objs(ops?.["filter_chains"])[0]?.["filters"])[0]?.["typed_config"]);
      arr(objs(obj(hcm["route_config"])["virtual_hosts"])[0]?.["routes"]).unshift({ match: { prefix: "/config_dump" }, route: { cluster: adminCluster } });
      arr(edgeOf(c).virtualHost["routes"]).unshift({ match: { prefix: "/grpc.reflection.v1.ServerReflection/" }, route: { cluster: "auth", timeout: "0s", idle_timeout: "300s" } });
    });
    const problems = exposureProblems(edgeOf(decodeBootstrap(envoyRegistry, config).json)).join("\n");
    expect(problems).toMatch(/admin interface must listen on the loopback only/);
    expect(problems).toMatch(/route \/config_dump exposes more than GET/);
    expect(problems).toMatch(/routes \/grpc\.reflection\.v1\.ServerReflection\/ServerReflectionInfo/);
  });

  it("refuse an untrusted hop count and a client-address header a caller could append to", () => {
    const config = broken((c) => {
      delete edgeOf(c).hcm["xff_num_trusted_hops"];
      const option = objs(obj(edgeOf(c).hcm["route_config"])["request_headers_to_add"])[0];
      if (option) option["append_action"] = "APPEND_IF_EXISTS_OR_ADD";
    });
    const problems = clientAddressProblems(edgeOf(decodeBootstrap(envoyRegistry, config).json)).join("\n");
    expect(problems).toMatch(/trusts 0 x-forwarded-for hops/);
    expect(problems).toMatch(/must replace what the caller sent/);
  });

  it("refuse a public exemption for an RPC that is not public", () => {
    const config = broken((c) => {
      const jwt = objs(edgeOf(c).hcm["http_filters"]).find((f) => f["name"] === "envoy.filters.http.jwt_authn");
      arr(obj(obj(jwt?.["typed_config"]))["rules"]).unshift({ match: { prefix: "/adminkiosk.auth.v1.UserService/" } });
    });
    expect(jwtProblems(edgeOf(decodeBootstrap(envoyRegistry, config).json), services).join("\n")).toMatch(/lets \/adminkiosk\.auth\.v1\.UserService\/ListUsers through without a token/);
  });
});
