// The Kubernetes and Istio manifests under istio/, without a cluster: every file is
// reached from a root kustomization, every object validates against its schema
// (kubernetes-models, @kubernetes-models/istio) with no unknown fields, and the
// objects agree with each other and with the code: every service that exists has its
// full set of objects, on its port from platformServices, with the environment its
// config needs, probes on its port, retries only for RPCs that change nothing (read
// from the generated proto descriptors), and AuthorizationPolicies that name real
// service accounts.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { DescService } from "@bufbuild/protobuf";
import type { IDestinationRule } from "@kubernetes-models/istio/networking.istio.io/v1beta1/DestinationRule";
import type { IVirtualService } from "@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService";
import type { IPeerAuthentication } from "@kubernetes-models/istio/security.istio.io/v1beta1/PeerAuthentication";
import type { IAuthorizationPolicy } from "@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IStatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import type { IHorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import type { ICronJob } from "kubernetes-models/batch/v1/CronJob";
import type { IJob } from "kubernetes-models/batch/v1/Job";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { INamespace } from "kubernetes-models/v1/Namespace";
import type { IPodTemplateSpec } from "kubernetes-models/v1/PodTemplateSpec";
import type { IProbe } from "kubernetes-models/v1/Probe";
import type { IService } from "kubernetes-models/v1/Service";
import type { IServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { platformServices, serviceEntry, type ServiceSpec } from "@adminkiosk/devstack";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const istioDir = join(repoRoot, "istio");
/** What gets applied: `kubectl apply -k` on each, in this order (docs/deployment.md). */
const roots = ["istio/base", "istio/bootstrap"];
const namespace = "adminkiosk";
/** The caller allowed that is not one of ours: Istio's ingress gateway. */
const ingressGatewayPrincipal = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account";
/** Connection strings and keys reach the pods from Secrets, never from a ConfigMap or a literal. */
const secretEnv = (name: string) => ["DATABASE_URL", "REDIS_URL", "NATS_URL", "AUTH_JWKS_URL"].includes(name) || /(_PASSWORD|_SECRET|_ENCRYPTION_KEY)$/.test(name);
/** Kustomization fields this test understands; anything else (patches, a namespace transform) would make the files differ from what is applied. */
const kustomizationFields = new Set(["apiVersion", "kind", "resources", "configMapGenerator", "labels", "generatorOptions"]);
const docsFile = "docs/deployment.md";

/** The folders under services/ with a src/main.ts, i.e. the services that exist. */
const existing = readdirSync(join(repoRoot, "services")).filter((name) => serviceEntry(repoRoot, name));
const specOf = (name: string): ServiceSpec => {
  const spec = platformServices.find((s) => s.name === name);
  if (!spec) throw new Error(`services/${name} exists but has no port in platformServices (packages/devstack/src/services.ts)`);
  return spec;
};

// ---------------------------------------------------------------------------
// Loading: kustomizations from the roots, their resources and generated ConfigMaps.

interface Meta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: Meta;
  [field: string]: unknown;
}
interface Manifest {
  /** Repository-relative path of the file it comes from (the kustomization, when generated). */
  file: string;
  object: KubeObject;
  generated: boolean;
}
interface Kustomization {
  resources?: unknown;
  configMapGenerator?: { name?: string; namespace?: string; files?: string[]; literals?: string[]; envs?: string[] }[];
  [field: string]: unknown;
}

const rel = (path: string) => relative(repoRoot, path);
const label = (m: Manifest) => `${m.file}: ${m.object.kind ?? "?"} ${m.object.metadata?.name ?? "(no name)"}`;

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(join(dir, entry.name)) : /\.ya?ml$/.test(entry.name) ? [join(dir, entry.name)] : [],
  );
}

function load() {
  const problems: string[] = [];
  const manifests: Manifest[] = [];
  const resourceFiles = new Set<string>();
  const kustomizations = new Set<string>();
  const docCount = new Map<string, number>();

  const readYaml = (file: string): unknown => {
    try {
      return parse(readFileSync(file, "utf8"));
    } catch (err) {
      problems.push(`${rel(file)}: not valid YAML: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  };

  const visitKustomization = (dir: string, from: string) => {
    const file = join(dir, "kustomization.yaml");
    if (!existsSync(file)) {
      problems.push(`${from} lists ${rel(dir)}, which has no kustomization.yaml`);
      return;
    }
    if (kustomizations.has(file)) return;
    kustomizations.add(file);
    const k = readYaml(file) as Kustomization | undefined;
    if (!k) return;
    for (const field of Object.keys(k)) {
      if (!kustomizationFields.has(field)) problems.push(`${rel(file)}: field "${field}" is not one this test understands (${[...kustomizationFields].join(", ")}); the files would no longer be what gets applied`);
    }
    const resources = k.resources ?? [];
    if (!Array.isArray(resources)) {
      problems.push(`${rel(file)}: resources must be a list`);
      return;
    }
    for (const entry of resources) {
      const target = resolve(dir, String(entry));
      if (!existsSync(target)) problems.push(`${rel(file)} lists "${String(entry)}", which does not exist`);
      else if (statSync(target).isDirectory()) visitKustomization(target, rel(file));
      else if (!resourceFiles.has(target)) {
        resourceFiles.add(target);
        loadResource(target);
      }
    }
    for (const generator of k.configMapGenerator ?? []) {
      const data: Record<string, string> = {};
      for (const spec of generator.files ?? []) {
        const [key, path] = spec.includes("=") ? [spec.slice(0, spec.indexOf("=")), spec.slice(spec.indexOf("=") + 1)] : [basename(spec), spec];
        const source = resolve(dir, path);
        if (!source.startsWith(dir + "/")) problems.push(`${rel(file)}: configMapGenerator file "${path}" is outside the kustomization's folder (kustomize refuses it)`);
        if (!existsSync(source)) problems.push(`${rel(file)}: configMapGenerator ${generator.name ?? "?"} reads "${path}", which does not exist`);
        else data[key] = readFileSync(source, "utf8");
      }
      for (const literal of generator.literals ?? []) data[literal.split("=")[0] ?? literal] = literal.slice(literal.indexOf("=") + 1);
      if (generator.envs?.length) problems.push(`${rel(file)}: configMapGenerator envs are not read by this test; use files or literals`);
      manifests.push({
        file: rel(file),
        generated: true,
        object: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: generator.name, ...(generator.namespace ? { namespace: generator.namespace } : {}) }, data },
      });
    }
  };

  const loadResource = (file: string) => {
    const docs = parseAllDocuments(readFileSync(file, "utf8"));
    const list = Array.isArray(docs) ? docs : [docs];
    let count = 0;
    for (const doc of list) {
      if (doc.errors.length) {
        problems.push(`${rel(file)}: not valid YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
        continue;
      }
      const object: unknown = doc.toJS();
      if (object === null || object === undefined) continue;
      count++;
      if (typeof object !== "object" || Array.isArray(object)) {
        problems.push(`${rel(file)}: a document that is not a Kubernetes object`);
        continue;
      }
      manifests.push({ file: rel(file), object: object as KubeObject, generated: false });
    }
    docCount.set(rel(file), count);
  };

  for (const root of roots) visitKustomization(join(repoRoot, root), "the test's roots");
  for (const file of walk(istioDir)) {
    if (basename(file) === "kustomization.yaml") {
      if (!kustomizations.has(file)) problems.push(`${rel(file)} is not included by ${roots.join(" or ")} (directly or through another kustomization)`);
    } else if (!resourceFiles.has(file)) {
      problems.push(`${rel(file)} is not listed by any kustomization reachable from ${roots.join(" or ")}`);
    }
  }
  return { problems, manifests, docCount, kustomizations: [...kustomizations].map(rel) };
}

const loaded = load();
const manifests = loaded.manifests;

function objects<T>(kind: string, apiVersion?: string): { manifest: Manifest; object: T }[] {
  return manifests
    .filter((m) => m.object.kind === kind && (apiVersion === undefined || m.object.apiVersion === apiVersion))
    .map((manifest) => ({ manifest, object: manifest.object as T }));
}
/** A manifest's object typed as its kind: only used after the schema test has validated it. */
const find = <T>(kind: string, name: string) => objects<T & KubeObject>(kind).find((o) => o.object.metadata?.name === name);

// ---------------------------------------------------------------------------
// Schemas: the model class for each apiVersion/kind, and unknown fields through the
// models' TypeScript types.

function modelModule(apiVersion: string, kind: string): string | undefined {
  if (!/^[A-Z][A-Za-z0-9]*$/.test(kind) || !/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion)) return undefined;
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group?.endsWith(".istio.io")) return `@kubernetes-models/istio/${group}/${version}/${kind}`;
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

interface ModelClass {
  new (data: unknown): { validate(): void };
  apiVersion: string;
  kind: string;
}

async function loadModel(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  const module = modelModule(apiVersion, kind);
  if (!module) return undefined;
  try {
    const exports = (await import(module)) as Record<string, unknown>;
    const model = exports[kind] as ModelClass | undefined;
    return typeof model === "function" && model.apiVersion === apiVersion && model.kind === kind ? model : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Fields the schema does not know (a misspelt `readinesProbe` passes the JSON-schema
 * validation, which allows extra properties). Each object becomes a literal typed
 * with its model's interface in a program that is type-checked in memory; every
 * property of every object literal must exist in its contextual type.
 */
function unknownFields(items: { manifest: Manifest; module: string; kind: string }[]): string[] {
  const virtual = join(repoRoot, "test/deploy/__manifest-types__.ts");
  const modules = [...new Set(items.map((i) => `${i.module}#${i.kind}`))];
  const typeName = (item: { module: string; kind: string }) => `T${modules.indexOf(`${item.module}#${item.kind}`)}`;
  const text = [
    ...modules.map((key, i) => {
      const [module, kind] = key.split("#");
      return `import type { I${kind} as T${i} } from "${module}";`;
    }),
    ...items.map((item, i) => `export const m${i}: ${typeName(item)} = ${JSON.stringify(item.manifest.object)};`),
  ].join("\n");
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (file, language, ...rest) => (file === virtual ? ts.createSourceFile(file, text, language, true) : getSourceFile.call(host, file, language, ...rest));
  host.fileExists = (file) => file === virtual || fileExists.call(host, file);
  host.readFile = (file) => (file === virtual ? text : readFile.call(host, file));
  const program = ts.createProgram([virtual], options, host);
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(virtual);
  if (!source) return ["could not type-check the manifests"];
  const problems = ts
    .getPreEmitDiagnostics(program, source)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, " "))
    .filter((message) => /Cannot find module|has no exported member/.test(message))
    .map((message) => `the models' types did not load: ${message}`);

  const known = (type: ts.Type, name: string): boolean => {
    if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return true;
    if (type.isUnion() || type.isIntersection()) return type.types.some((t) => known(t, name));
    if (checker.getIndexInfoOfType(type, ts.IndexKind.String)) return true;
    return checker.getPropertyOfType(type, name) !== undefined;
  };
  const pathOf = (node: ts.Node) => {
    const parts: string[] = [];
    let index = -1;
    for (let n: ts.Node = node; n.parent && !ts.isVariableDeclaration(n); n = n.parent) {
      if (ts.isPropertyAssignment(n) && ts.isStringLiteral(n.name)) parts.unshift(n.name.text);
      else if (ts.isArrayLiteralExpression(n.parent)) parts.unshift(String(n.parent.elements.indexOf(n as ts.Expression)));
      if (ts.isVariableDeclaration(n.parent) && ts.isIdentifier(n.parent.name)) index = Number(n.parent.name.text.slice(1));
    }
    return { path: parts.join("."), index };
  };
  const visit = (node: ts.Node) => {
    if (ts.isObjectLiteralExpression(node)) {
      const type = checker.getContextualType(node);
      for (const property of type ? node.properties : []) {
        if (type && ts.isPropertyAssignment(property) && ts.isStringLiteral(property.name) && !known(type, property.name.text)) {
          const { path, index } = pathOf(property);
          const item = items[index];
          problems.push(`${item ? label(item.manifest) : "?"}: unknown field ${path} (not in the ${item?.kind ?? ""} schema)`);
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return problems;
}

// ---------------------------------------------------------------------------
// The services' code: required environment and RPCs.

interface Schema {
  safeParse(value: unknown): { success: boolean; data?: unknown };
}
const isShape = (v: unknown): v is Record<string, Schema> =>
  typeof v === "object" && v !== null && Object.values(v).every((s) => typeof (s as Partial<Schema>).safeParse === "function");

/** A service's config shape (services/<name>/src/config.ts exports <name>ConfigShape), as test/deploy/compose.test.ts reads it. */
async function configShape(name: string): Promise<Record<string, Schema>> {
  const file = join(repoRoot, "services", name, "src", "config.ts");
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const shape = Object.entries(mod).find(([key]) => key.endsWith("ConfigShape"))?.[1];
  if (!isShape(shape)) throw new Error(`${rel(file)} exports no <name>ConfigShape of zod schemas to read ${name}'s environment from`);
  return shape;
}
const requiredKeys = (shape: Record<string, Schema>) =>
  Object.entries(shape)
    .filter(([, schema]) => !schema.safeParse(undefined).success)
    .map(([key]) => key);

/** The gRPC services of adminkiosk.<name>.v1, from the generated descriptors. */
async function grpcServices(name: string): Promise<DescService[]> {
  const dir = join(repoRoot, "packages/proto/src/gen/adminkiosk", name);
  if (!existsSync(dir)) return [];
  const files = walkTs(dir).filter((f) => f.endsWith("_pb.ts"));
  const modules = await Promise.all(files.map(async (f) => (await import(pathToFileURL(f).href)) as Record<string, unknown>));
  return modules.flatMap((m) => Object.values(m).filter((v): v is DescService => typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === "service"));
}
function walkTs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walkTs(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

/**
 * RPCs that change nothing, so the mesh may repeat them: those the proto marks
 * `idempotency_level`, and by this project's naming Get*, List* and WhoAmI.
 */
const isIdempotent = (method: DescService["methods"][number]) =>
  method.idempotency !== 0 || /^(Get|List)[A-Z]/.test(method.name) || method.name === "WhoAmI";

// ---------------------------------------------------------------------------
// Small readers.

const kebab = (kind: string) => kind.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
const seconds = (duration: string | undefined) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(duration ?? "");
  return m ? Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as "ms" | "s" | "m" | "h"] : undefined;
};
const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  !!selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);
const workloads = () => [
  ...objects<IDeployment & KubeObject>("Deployment").map((w) => ({ ...w, template: w.object.spec?.template })),
  ...objects<IStatefulSet & KubeObject>("StatefulSet").map((w) => ({ ...w, template: w.object.spec?.template })),
  ...objects<IJob & KubeObject>("Job").map((w) => ({ ...w, template: w.object.spec?.template })),
  ...objects<ICronJob & KubeObject>("CronJob").map((w) => ({ ...w, template: w.object.spec?.jobTemplate.spec?.template })),
];
function probePort(probe: IProbe | undefined): number | string | undefined {
  return probe?.grpc?.port ?? probe?.httpGet?.port ?? probe?.tcpSocket?.port;
}
/** The seconds a preStop hook sleeps (exec `sleep N` or the native sleep action). */
function preStopSleep(container: IContainer): number | undefined {
  const preStop = container.lifecycle?.preStop;
  if (preStop?.sleep) return Number(preStop.sleep.seconds);
  const m = /\bsleep\s+(\d+)/.exec((preStop?.exec?.command ?? []).join(" "));
  return m ? Number(m[1]) : undefined;
}

/** A container's environment: names, where each value comes from, literal/ConfigMap values. */
function containerEnv(m: Manifest, container: IContainer, problems: string[]) {
  const env = new Map<string, { from: "literal" | "configMap" | "secret" | "other"; value?: string }>();
  for (const source of container.envFrom ?? []) {
    if (source.secretRef) problems.push(`${label(m)}: container ${container.name} takes envFrom Secret ${source.secretRef.name}; name each secret variable with secretKeyRef so the names are visible`);
    const name = source.configMapRef?.name;
    if (!name) continue;
    const configMap = find<IConfigMap>("ConfigMap", name);
    if (!configMap) problems.push(`${label(m)}: container ${container.name} takes envFrom ConfigMap ${name}, which no manifest defines`);
    for (const [key, value] of Object.entries(configMap?.object.data ?? {})) env.set(key, { from: "configMap", value });
  }
  for (const variable of container.env ?? []) {
    const ref = variable.valueFrom;
    if (ref?.configMapKeyRef) {
      const configMap = find<IConfigMap>("ConfigMap", ref.configMapKeyRef.name ?? "");
      const value = configMap?.object.data?.[ref.configMapKeyRef.key];
      if (value === undefined) problems.push(`${label(m)}: ${variable.name} refers to ConfigMap ${ref.configMapKeyRef.name ?? "?"} key ${ref.configMapKeyRef.key}, which no manifest defines`);
      env.set(variable.name, { from: "configMap", value });
    } else if (ref?.secretKeyRef) env.set(variable.name, { from: "secret" });
    else if (ref) env.set(variable.name, { from: "other" });
    else env.set(variable.name, { from: "literal", value: variable.value });
  }
  return env;
}

const documented = readFileSync(join(repoRoot, docsFile), "utf8").replace(/\\\r?\n\s*/g, " ");
/** Secrets and their keys that docs/deployment.md creates (`kubectl create secret generic NAME --from-literal=KEY=...`). */
const documentedSecrets = new Map<string, Set<string>>();
for (const m of documented.matchAll(/create secret generic ([a-z0-9-]+)([^\n]*)/g)) {
  const keys = documentedSecrets.get(m[1] ?? "") ?? new Set<string>();
  for (const k of (m[2] ?? "").matchAll(/--from-(?:literal|file)=([A-Za-z0-9_.-]+)=/g)) keys.add(k[1] ?? "");
  documentedSecrets.set(m[1] ?? "", keys);
}

// ---------------------------------------------------------------------------

describe("istio/ manifests", () => {
  it("are all reached from the root kustomizations, whose entries all exist", () => {
    expect(loaded.problems).toEqual([]);
    expect(loaded.kustomizations).toEqual(expect.arrayContaining(roots.map((r) => `${r}/kustomization.yaml`)));
    expect(manifests.length).toBeGreaterThan(0);
  });

  it("validate against their schemas (kubernetes-models, @kubernetes-models/istio), with no unknown kinds or fields", async () => {
    const problems: string[] = [];
    const typed: { manifest: Manifest; module: string; kind: string }[] = [];
    for (const manifest of manifests) {
      const { apiVersion, kind } = manifest.object;
      if (!apiVersion || !kind) {
        problems.push(`${label(manifest)}: has no apiVersion or kind`);
        continue;
      }
      const Model = await loadModel(apiVersion, kind);
      if (!Model) {
        problems.push(`${label(manifest)}: unknown kind ${kind} in ${apiVersion} (no model in kubernetes-models or @kubernetes-models/istio)`);
        continue;
      }
      try {
        new Model(manifest.object).validate();
      } catch (err) {
        problems.push(`${label(manifest)}: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (!manifest.object.metadata?.name) problems.push(`${label(manifest)}: has no metadata.name`);
      typed.push({ manifest, module: modelModule(apiVersion, kind) ?? "", kind });
    }
    problems.push(...unknownFields(typed));
    expect(problems).toEqual([]);
  });

  it("are one object per file, named kind-target[-variant].yaml, opening with their apply command", () => {
    const problems: string[] = [];
    for (const [file, count] of loaded.docCount) if (count !== 1) problems.push(`${file}: holds ${count} objects; put one per file`);
    for (const m of manifests.filter((m) => !m.generated)) {
      const expected = `${kebab(m.object.kind ?? "")}-`;
      if (!basename(m.file).startsWith(expected)) problems.push(`${label(m)}: the file's name should start with "${expected}" (kind-target-variant, like Istio's bookinfo)`);
      const first = readFileSync(join(repoRoot, m.file), "utf8").split("\n")[0] ?? "";
      const applyK = /^# kubectl apply -k (\S+)$/.exec(first)?.[1];
      const ok = first === `# kubectl apply -f ${m.file}` || (applyK !== undefined && loaded.kustomizations.includes(`${applyK}/kustomization.yaml`) && m.file.startsWith(`${applyK}/`));
      if (!ok) problems.push(`${m.file}: the first line should be "# kubectl apply -f ${m.file}" (got "${first}")`);
    }
    for (const k of loaded.kustomizations.filter((k) => k.startsWith("istio/"))) {
      const first = readFileSync(join(repoRoot, k), "utf8").split("\n")[0];
      if (first !== `# kubectl apply -k ${dirname(k)}`) problems.push(`${k}: the first line should be "# kubectl apply -k ${dirname(k)}" (got "${first ?? ""}")`);
    }
    expect(problems).toEqual([]);
  });

  it("live in the adminkiosk namespace, labelled for sidecar injection, with mesh-wide STRICT mTLS", () => {
    const problems: string[] = [];
    const ns = find<INamespace>("Namespace", namespace);
    if (!ns) problems.push(`no Namespace ${namespace} under istio/`);
    else if (ns.object.metadata?.labels?.["istio-injection"] !== "enabled") problems.push(`${label(ns.manifest)}: needs the label istio-injection: enabled`);

    const strict = objects<IPeerAuthentication & KubeObject>("PeerAuthentication").filter(
      ({ object }) => object.metadata?.namespace === "istio-system" && !object.spec?.selector && object.spec?.mtls?.mode === "STRICT",
    );
    if (strict.length !== 1) problems.push(`want one mesh-wide PeerAuthentication (namespace istio-system, no selector, mtls.mode STRICT); found ${strict.length}`);
    for (const { manifest, object } of objects<IPeerAuthentication & KubeObject>("PeerAuthentication")) {
      if (object.spec?.mtls?.mode !== "STRICT") problems.push(`${label(manifest)}: mtls.mode is ${object.spec?.mtls?.mode ?? "unset"}; everything here is STRICT`);
    }
    for (const m of manifests) {
      const kind = m.object.kind;
      if (kind === "Namespace") continue;
      const want = kind === "PeerAuthentication" ? "istio-system" : namespace;
      if (m.object.metadata?.namespace !== want) problems.push(`${label(m)}: metadata.namespace is ${m.object.metadata?.namespace ?? "unset"}; want ${want}`);
    }
    expect(problems).toEqual([]);
  });

  it("label every workload with app and version (Kiali) and name every container port", () => {
    const problems: string[] = [];
    for (const { manifest, object, template } of workloads()) {
      for (const [where, labels] of [["metadata.labels", object.metadata?.labels], ["spec.template.metadata.labels", template?.metadata?.labels]] as const) {
        if (!labels?.["app"] || !labels["version"]) problems.push(`${label(manifest)}: ${where} needs app and version`);
      }
      for (const container of template?.spec?.containers ?? []) {
        for (const port of container.ports ?? []) if (!port.name) problems.push(`${label(manifest)}: container ${container.name} port ${port.containerPort} has no name`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("select real pods: Services, HPAs, PDBs and AuthorizationPolicies point at workloads that exist", () => {
    const problems: string[] = [];
    const templates = workloads().map((w) => ({ labels: w.template?.metadata?.labels, containers: w.template?.spec?.containers ?? [] }));
    for (const { manifest, object } of objects<IService & KubeObject>("Service")) {
      const pods = templates.filter((t) => matches(object.spec?.selector, t.labels));
      if (!pods.length) problems.push(`${label(manifest)}: its selector matches no workload's pods`);
      for (const port of object.spec?.ports ?? []) {
        if (!port.name) problems.push(`${label(manifest)}: port ${port.port} has no name (Istio reads the protocol from it)`);
        const target = port.targetPort ?? port.port;
        if (typeof target === "string" && !pods.some((p) => p.containers.some((c) => c.ports?.some((cp) => cp.name === target))))
          problems.push(`${label(manifest)}: targetPort ${target} is not a named port of its pods`);
      }
    }
    const deployments = objects<IDeployment & KubeObject>("Deployment");
    for (const { manifest, object } of objects<IHorizontalPodAutoscaler & KubeObject>("HorizontalPodAutoscaler")) {
      const target = object.spec?.scaleTargetRef;
      if (target?.kind !== "Deployment" || !deployments.some((d) => d.object.metadata?.name === target.name))
        problems.push(`${label(manifest)}: scaleTargetRef ${target?.kind ?? "?"} ${target?.name ?? "?"} is no Deployment here`);
      const deployment = deployments.find((d) => d.object.metadata?.name === target?.name);
      if (deployment && deployment.object.spec?.replicas !== undefined) problems.push(`${label(deployment.manifest)}: sets replicas, which fights ${label(manifest)}; leave the count to the HPA`);
    }
    for (const { manifest, object } of objects<IPodDisruptionBudget & KubeObject>("PodDisruptionBudget")) {
      if (!templates.some((t) => matches(object.spec?.selector?.matchLabels, t.labels))) problems.push(`${label(manifest)}: its selector matches no workload's pods`);
    }
    for (const { manifest, object } of objects<IAuthorizationPolicy & KubeObject>("AuthorizationPolicy")) {
      const selector = object.spec?.selector?.matchLabels;
      if (selector && !templates.some((t) => matches(selector, t.labels))) problems.push(`${label(manifest)}: its selector matches no workload's pods`);
    }
    for (const { manifest, object, template } of workloads()) {
      const selector = (object.spec as { selector?: { matchLabels?: Record<string, string> } } | undefined)?.selector?.matchLabels;
      if (object.kind !== "Job" && object.kind !== "CronJob" && !matches(selector, template?.metadata?.labels)) problems.push(`${label(manifest)}: spec.selector.matchLabels does not match its pod template's labels`);
      const account = template?.spec?.serviceAccountName;
      if (!account) problems.push(`${label(manifest)}: set serviceAccountName (its identity in the mesh)`);
      else if (!find<IServiceAccount>("ServiceAccount", account)) problems.push(`${label(manifest)}: serviceAccountName ${account} has no ServiceAccount here`);
    }
    expect(problems).toEqual([]);
  });

  it("allow only principals that exist: our service accounts or Istio's ingress gateway", () => {
    const problems: string[] = [];
    const policies = objects<IAuthorizationPolicy & KubeObject>("AuthorizationPolicy");
    for (const { manifest, object } of policies) {
      for (const rule of object.spec?.rules ?? []) {
        for (const from of rule.from ?? []) {
          for (const principal of [...(from.source?.principals ?? []), ...(from.source?.notPrincipals ?? [])]) {
            if (principal === ingressGatewayPrincipal) continue;
            const m = /^cluster\.local\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(principal);
            if (!m) problems.push(`${label(manifest)}: principal "${principal}" is not cluster.local/ns/<namespace>/sa/<account>`);
            else if (m[1] !== namespace || !find<IServiceAccount>("ServiceAccount", m[2] ?? "")) problems.push(`${label(manifest)}: principal "${principal}" names no ServiceAccount here`);
          }
        }
      }
    }
    const allowNothing = policies.filter(({ object }) => !object.spec?.selector && !object.spec?.rules?.length && (object.spec?.action ?? "ALLOW") === "ALLOW");
    if (!allowNothing.length) problems.push(`no namespace-wide allow-nothing AuthorizationPolicy (empty spec): pods without a policy would take calls from anyone in the mesh`);
    expect(problems).toEqual([]);
  });

  it("take Secrets and hand-made ConfigMaps that docs/deployment.md tells you to create", () => {
    const problems: string[] = [];
    for (const { manifest, template } of workloads()) {
      for (const container of [...(template?.spec?.containers ?? []), ...(template?.spec?.initContainers ?? [])]) {
        for (const variable of container.env ?? []) {
          const ref = variable.valueFrom?.secretKeyRef;
          if (ref && !documentedSecrets.get(ref.name ?? "")?.has(ref.key)) problems.push(`${label(manifest)}: ${variable.name} reads Secret ${ref.name ?? "?"} key ${ref.key}, which ${docsFile} does not create (kubectl create secret generic ${ref.name ?? "?"} --from-literal=${ref.key}=...)`);
        }
      }
      for (const volume of template?.spec?.volumes ?? []) {
        const name = volume.configMap?.name;
        if (name && !find<IConfigMap>("ConfigMap", name) && !documented.includes(`create configmap ${name}`)) problems.push(`${label(manifest)}: volume ${volume.name} mounts ConfigMap ${name}, which is neither here nor created in ${docsFile}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe.each(existing)("service %s", (name) => {
  const spec = specOf(name);
  const deployment = objects<IDeployment & KubeObject>("Deployment").find(({ object }) => object.spec?.template?.metadata?.labels?.["app"] === name);
  const template: IPodTemplateSpec | undefined = deployment?.object.spec?.template;
  const container = template?.spec?.containers.find((c) => c.ports?.some((p) => p.name === "grpc")) ?? template?.spec?.containers[0];
  const where = deployment ? label(deployment.manifest) : `the Deployment of ${name}`;

  it("has a Deployment, Service, ServiceAccount, DestinationRule, VirtualService, AuthorizationPolicy, HPA and PDB", () => {
    const problems: string[] = [];
    if (!deployment) problems.push(`no Deployment under istio/ runs ${name} (pod label app: ${name}); add istio/base/${name}/ like istio/base/auth/`);
    const want: [string, (o: KubeObject) => boolean][] = [
      ["Service", (o) => o.metadata?.name === name],
      ["ServiceAccount", (o) => o.metadata?.name === name],
      ["DestinationRule", (o) => (o as IDestinationRule).spec?.host === name],
      ["VirtualService", (o) => !!(o as IVirtualService).spec?.hosts?.includes(name) && !(o as IVirtualService).spec?.gateways?.length],
      ["AuthorizationPolicy", (o) => (o as IAuthorizationPolicy).spec?.selector?.matchLabels?.["app"] === name],
      ["HorizontalPodAutoscaler", (o) => (o as IHorizontalPodAutoscaler).spec?.scaleTargetRef?.name === deployment?.object.metadata?.name && o.apiVersion === "autoscaling/v2"],
      ["PodDisruptionBudget", (o) => (o as IPodDisruptionBudget).spec?.selector?.matchLabels?.["app"] === name],
    ];
    for (const [kind, test] of want) if (!manifests.some((m) => m.object.kind === kind && test(m.object))) problems.push(`no ${kind} for ${name} under istio/ (see istio/base/auth/ for the set)`);
    expect(problems).toEqual([]);
  });

  it(`serves on its port from platformServices (${spec.port}), named grpc, on the Service and the pod`, () => {
    const problems: string[] = [];
    const service = find<IService>("Service", name);
    const port = service?.object.spec?.ports?.find((p) => p.name === "grpc");
    if (!port) problems.push(`${service ? label(service.manifest) : `Service ${name}`}: needs a port named grpc`);
    else {
      if (port.port !== spec.port) problems.push(`${label(service!.manifest)}: port grpc is ${port.port}; ${name}'s port in platformServices is ${spec.port}`);
      if (port.appProtocol !== "grpc") problems.push(`${label(service!.manifest)}: port grpc needs appProtocol: grpc`);
    }
    const containerPort = container?.ports?.find((p) => p.name === "grpc");
    if (containerPort?.containerPort !== spec.port) problems.push(`${where}: container port grpc should be ${spec.port} (got ${JSON.stringify(containerPort?.containerPort) ?? "none"})`);
    const annotations = template?.metadata?.annotations ?? {};
    const wanted = { "prometheus.io/scrape": "true", "prometheus.io/port": String(spec.port), "prometheus.io/path": "/metrics" };
    for (const [key, value] of Object.entries(wanted)) if (annotations[key] !== value) problems.push(`${where}: pod annotation ${key} should be "${value}" (got ${JSON.stringify(annotations[key])})`);
    expect(problems).toEqual([]);
  });

  it("probes its port: gRPC health for readiness, /healthz for liveness, and a startup probe", () => {
    const problems: string[] = [];
    const onPort = (p: number | string | undefined) => p === spec.port || p === "grpc";
    if (container?.readinessProbe?.grpc?.port !== spec.port) problems.push(`${where}: readinessProbe should be grpc: {port: ${spec.port}} (grpc.health.v1, NOT_SERVING while a dependency is down)`);
    const liveness = container?.livenessProbe?.httpGet;
    if (liveness?.path !== "/healthz" || !onPort(liveness.port)) problems.push(`${where}: livenessProbe should be httpGet /healthz on port ${spec.port}`);
    if (!container?.startupProbe || !onPort(probePort(container.startupProbe))) problems.push(`${where}: needs a startupProbe on port ${spec.port}`);
    expect(problems).toEqual([]);
  });

  it("runs hardened: non-root, read-only root, no capabilities, RuntimeDefault seccomp, requests and limits", () => {
    const problems: string[] = [];
    const pod = template?.spec?.securityContext;
    const own = container?.securityContext;
    if (!(own?.runAsNonRoot ?? pod?.runAsNonRoot)) problems.push(`${where}: runAsNonRoot: true`);
    if (!own?.readOnlyRootFilesystem) problems.push(`${where}: readOnlyRootFilesystem: true`);
    if (own?.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation: false`);
    if (!own?.capabilities?.drop?.includes("ALL")) problems.push(`${where}: capabilities.drop: [ALL]`);
    if ((own?.seccompProfile ?? pod?.seccompProfile)?.type !== "RuntimeDefault") problems.push(`${where}: seccompProfile.type: RuntimeDefault`);
    for (const kind of ["requests", "limits"] as const) {
      for (const resource of ["cpu", "memory"]) if (container?.resources?.[kind]?.[resource] === undefined) problems.push(`${where}: resources.${kind}.${resource}`);
    }
    expect(problems).toEqual([]);
  });

  it("gets exactly the environment its config reads, secrets from Secrets", async () => {
    const problems: string[] = [];
    const shape = await configShape(name);
    const env = deployment && container ? containerEnv(deployment.manifest, container, problems) : new Map();
    for (const key of requiredKeys(shape)) if (!env.has(key)) problems.push(`${where}: ${key} is required by services/${name}/src/config.ts but not set`);
    for (const [key, source] of env) {
      if (!(key in shape)) problems.push(`${where}: ${key} is not a setting of ${name} (services/${name}/src/config.ts); misspelt?`);
      if (secretEnv(key) && source.from !== "secret") problems.push(`${where}: ${key} must come from a Secret (secretKeyRef), not a ${source.from}`);
      const schema = shape[key];
      if (schema && source.value !== undefined && !schema.safeParse(source.value).success) problems.push(`${where}: ${key}="${source.value}" is not a valid value for services/${name}/src/config.ts`);
    }
    const port = env.get(spec.portVar)?.value;
    if (port !== undefined && port !== String(spec.port)) problems.push(`${where}: ${spec.portVar} is ${port}, not ${spec.port}`);
    if (env.get("HOST")?.value !== undefined && env.get("HOST")?.value !== "0.0.0.0") problems.push(`${where}: HOST must be 0.0.0.0 so the sidecar reaches the service`);
    expect(problems).toEqual([]);
  });

  it("drains on rollout: preStop sleep, then SHUTDOWN_GRACE_MS, inside the grace period, with the sidecar outliving it", async () => {
    const problems: string[] = [];
    const shape = await configShape(name);
    const env = deployment && container ? containerEnv(deployment.manifest, container, []) : new Map<string, { value?: string }>();
    const parsed = shape["SHUTDOWN_GRACE_MS"]?.safeParse(env.get("SHUTDOWN_GRACE_MS")?.value);
    const graceMs = Number(parsed?.data);
    if (!Number.isFinite(graceMs)) problems.push(`${where}: could not read SHUTDOWN_GRACE_MS from services/${name}/src/config.ts and the pod's environment`);
    const sleep = container ? preStopSleep(container) : undefined;
    if (!sleep) problems.push(`${where}: needs a preStop sleep, so the pod leaves every proxy's endpoints before it starts draining`);
    const needed = (sleep ?? 0) + graceMs / 1000;
    const termination = template?.spec?.terminationGracePeriodSeconds ?? 30;
    if (!(termination > needed)) problems.push(`${where}: terminationGracePeriodSeconds ${termination} must exceed preStop ${sleep ?? 0} s + SHUTDOWN_GRACE_MS ${graceMs} ms`);
    const proxy = parse(template?.metadata?.annotations?.["proxy.istio.io/config"] ?? "{}") as { terminationDrainDuration?: string } | null;
    const drain = seconds(proxy?.terminationDrainDuration) ?? 5;
    if (!(drain >= needed)) problems.push(`${where}: the sidecar stops after ${drain} s (proxy.istio.io/config terminationDrainDuration) while ${name} drains until ${needed} s`);
    if (drain >= termination) problems.push(`${where}: terminationDrainDuration ${drain} s should end before terminationGracePeriodSeconds ${termination}`);
    expect(problems).toEqual([]);
  });

  it("has a DestinationRule with mTLS, a connection pool, outlier detection and the version subset", () => {
    const problems: string[] = [];
    const rule = objects<IDestinationRule & KubeObject>("DestinationRule").find(({ object }) => object.spec?.host === name);
    const at = rule ? label(rule.manifest) : `DestinationRule ${name}`;
    const policy = rule?.object.spec?.trafficPolicy;
    if (policy?.tls?.mode !== "ISTIO_MUTUAL") problems.push(`${at}: trafficPolicy.tls.mode ISTIO_MUTUAL`);
    if (!policy?.connectionPool?.http?.http2MaxRequests) problems.push(`${at}: trafficPolicy.connectionPool.http.http2MaxRequests`);
    if (!policy?.outlierDetection) problems.push(`${at}: trafficPolicy.outlierDetection`);
    const version = template?.metadata?.labels?.["version"];
    if (!rule?.object.spec?.subsets?.some((s) => s.labels?.["version"] === version)) problems.push(`${at}: no subset for version ${version ?? "?"} of ${where}`);
    expect(problems).toEqual([]);
  });

  it("retries only RPCs that change nothing, and sets timeouts (from the generated descriptors)", async () => {
    const problems: string[] = [];
    const services = await grpcServices(name);
    if (!services.length) problems.push(`no generated gRPC services for ${name} under packages/proto/src/gen/adminkiosk/${name}/`);
    const vs = objects<IVirtualService & KubeObject>("VirtualService").find(({ object }) => object.spec?.hosts?.includes(name) && !object.spec.gateways?.length);
    const at = vs ? label(vs.manifest) : `VirtualService ${name}`;
    const routes = vs?.object.spec?.http ?? [];
    const subsets = objects<IDestinationRule & KubeObject>("DestinationRule").find(({ object }) => object.spec?.host === name)?.object.spec?.subsets ?? [];
    routes.forEach((route, i) => {
      const routeName = route.name ?? `http[${i}]`;
      for (const d of route.route ?? []) {
        if (d.destination?.host !== name || d.destination.port?.number !== spec.port) problems.push(`${at}: route ${routeName} goes to ${d.destination?.host ?? "?"}:${d.destination?.port?.number ?? "?"}, not ${name}:${spec.port}`);
        if (d.destination?.subset && !subsets.some((s) => s.name === d.destination?.subset)) problems.push(`${at}: route ${routeName} names subset ${d.destination.subset}, which the DestinationRule does not define`);
      }
      if (route.retries === undefined) problems.push(`${at}: route ${routeName} has no retries block, so Istio's default (2 retries, on 503 and UNAVAILABLE too) applies`);
    });
    /** The first route whose match takes the path (Istio's order), like Envoy would pick it. */
    const routeFor = (path: string) =>
      routes.find((route) =>
        !route.match?.length
          ? true
          : route.match.some((m) => {
              const uri = m.uri;
              if (!uri) return true;
              if (uri.exact !== undefined) return uri.exact === path;
              if (uri.prefix !== undefined) return path.startsWith(uri.prefix);
              if (uri.regex !== undefined) return new RegExp(`^(?:${uri.regex})$`).test(path);
              return false;
            }),
      );
    const safeRetryOn = new Set(["connect-failure", "refused-stream"]);
    for (const service of services) {
      for (const method of service.methods) {
        const path = `/${service.typeName}/${method.name}`;
        const route = routeFor(path);
        if (!route) {
          problems.push(`${at}: no route takes ${path}`);
          continue;
        }
        const routeName = route.name ?? "(unnamed route)";
        const attempts = route.retries?.attempts ?? 0;
        const retryOn = (route.retries?.retryOn ?? "").split(",").map((s) => s.trim()).filter(Boolean);
        const streaming = method.methodKind !== "unary";
        if (streaming) {
          if (seconds(route.timeout) !== undefined && seconds(route.timeout) !== 0) problems.push(`${at}: ${path} streams but route ${routeName} cuts it after ${route.timeout}; give streams a route with timeout 0s`);
        } else if (!route.timeout || !seconds(route.timeout)) problems.push(`${at}: ${path} goes through route ${routeName}, which sets no timeout`);
        if (isIdempotent(method) && !streaming) {
          if (attempts < 1) problems.push(`${at}: ${path} changes nothing but route ${routeName} does not retry it`);
          if (!route.retries?.perTryTimeout) problems.push(`${at}: route ${routeName} retries ${path} without a perTryTimeout`);
        } else if (attempts > 0 && retryOn.some((condition) => !safeRetryOn.has(condition))) {
          problems.push(`${at}: ${path} is not idempotent but route ${routeName} retries it on ${retryOn.filter((c) => !safeRetryOn.has(c)).join(", ")}; only connect-failure and refused-stream (the call never reached ${name}) are safe`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("allows only its callers: the edge, other services for the JWKS, Prometheus for /metrics", () => {
    const problems: string[] = [];
    const policy = objects<IAuthorizationPolicy & KubeObject>("AuthorizationPolicy").find(({ object }) => object.spec?.selector?.matchLabels?.["app"] === name);
    const at = policy ? label(policy.manifest) : `AuthorizationPolicy for ${name}`;
    const rules = policy?.object.spec?.rules ?? [];
    if ((policy?.object.spec?.action ?? "ALLOW") !== "ALLOW" || !rules.length) problems.push(`${at}: an ALLOW policy with rules naming the callers`);
    const allows = (principal: string, path: string, method = "GET") =>
      rules.some(
        (rule) =>
          (rule.from ?? []).some((f) => f.source?.principals?.includes(principal)) &&
          (rule.to ?? []).some((t) => {
            const op = t.operation;
            const pathOk = !op?.paths || op.paths.some((p) => (p.endsWith("*") ? path.startsWith(p.slice(0, -1)) : p === path));
            return pathOk && (!op?.methods || op.methods.includes(method));
          }),
      );
    const sa = (account: string) => `cluster.local/ns/${namespace}/sa/${account}`;
    if (!allows(sa("prometheus"), "/metrics")) problems.push(`${at}: allow ${sa("prometheus")} GET /metrics`);
    if (name === "auth") {
      for (const caller of ["envoy-edge", ...existing.filter((s) => s !== "auth")]) {
        if (!allows(sa(caller), "/.well-known/jwks.json")) problems.push(`${at}: allow ${sa(caller)} GET /.well-known/jwks.json (it verifies tokens with auth's keys)`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe("tracing and dashboards (istio/base/observability)", () => {
  it("trace every sidecar of the namespace through the mesh's otel-tracing provider, sampling a share", () => {
    const telemetry = objects<{ spec?: { selector?: unknown; tracing?: { providers?: { name?: string }[]; randomSamplingPercentage?: number }[] } } & KubeObject>("Telemetry").filter(
      ({ object }) => object.metadata?.namespace === namespace && !object.spec?.selector,
    );
    expect(telemetry, "one namespace-wide Telemetry resource").toHaveLength(1);
    const tracing = telemetry[0]!.object.spec?.tracing ?? [];
    expect(tracing.flatMap((t) => t.providers ?? []).map((p) => p.name)).toEqual(["otel-tracing"]);
    const share = tracing[0]?.randomSamplingPercentage ?? 100;
    expect(share > 0 && share < 100, `randomSamplingPercentage ${share}`).toBe(true);
    // The provider is the mesh's (meshConfig.extensionProviders): docs/deployment.md says how to name it.
    expect(documented).toContain("meshConfig.extensionProviders[0].name=otel-tracing");
    expect(documented).toContain("opentelemetry.service=otel-collector.adminkiosk.svc.cluster.local");
  });

  it("run the Collector (OTLP on 4317 and 4318, its config from deploy/otel), Jaeger, and Grafana provisioned with every dashboard under deploy/grafana", () => {
    for (const [name, ports] of [["otel-collector", [4317, 4318]], ["jaeger", [4317, 16686]], ["grafana", [3000]]] as const) {
      const service = find<IService>("Service", name);
      expect(service, `Service ${name}`).toBeDefined();
      expect(service!.object.spec?.ports?.map((p) => p.port)).toEqual(expect.arrayContaining([...ports]));
      expect(workloads().some((w) => w.template?.metadata?.labels?.["app"] === name), `a workload for ${name}`).toBe(true);
    }
    const collector = find<IConfigMap>("ConfigMap", "otel-collector");
    expect(collector?.manifest.generated).toBe(true);
    expect(collector?.object.data?.["collector.yaml"]).toBe(readFileSync(join(repoRoot, "deploy/otel/collector.yaml"), "utf8"));
    const dashboards = find<IConfigMap>("ConfigMap", "grafana-dashboards");
    const files = readdirSync(join(repoRoot, "deploy/grafana/dashboards")).filter((f) => f.endsWith(".json")).sort();
    expect(Object.keys(dashboards?.object.data ?? {}).sort(), "grafana-dashboards holds every dashboard file").toEqual(files);
    const grafana = workloads().find((w) => w.template?.metadata?.labels?.["app"] === "grafana")!;
    const mounted = (grafana.template?.spec?.volumes ?? []).map((v) => v.configMap?.name).filter(Boolean);
    expect(mounted).toEqual(expect.arrayContaining(["grafana-datasources", "grafana-dashboard-provider", "grafana-dashboards"]));
    const env = Object.fromEntries((grafana.template?.spec?.containers?.[0]?.env ?? []).map((e) => [e.name, e.value]));
    expect(env["GRAFANA_PROMETHEUS_URL"]).toBe("http://prometheus:9090");
    expect(env["GRAFANA_JAEGER_URL"]).toBe("http://jaeger:16686");
  });

  it("let the namespace's workloads send spans to the Collector, and only the Collector and Grafana reach Jaeger", () => {
    const policy = (app: string) => objects<IAuthorizationPolicy & KubeObject>("AuthorizationPolicy").find(({ object }) => object.spec?.selector?.matchLabels?.["app"] === app)?.object;
    const collector = policy("otel-collector");
    expect(collector?.spec?.rules?.[0]?.from?.[0]?.source?.namespaces).toEqual([namespace]);
    const jaeger = policy("jaeger");
    expect(jaeger?.spec?.rules?.flatMap((r) => r.from?.flatMap((f) => f.source?.principals ?? []) ?? []).sort()).toEqual([
      `cluster.local/ns/${namespace}/sa/grafana`,
      `cluster.local/ns/${namespace}/sa/otel-collector`,
    ]);
  });
});

describe("Service ports", () => {
  it("match platformServices for every service that has a Service", () => {
    const problems: string[] = [];
    for (const spec of platformServices) {
      const service = find<IService>("Service", spec.name);
      const port = service?.object.spec?.ports?.find((p) => p.name === "grpc")?.port;
      if (service && port !== spec.port) problems.push(`${label(service.manifest)}: port grpc is ${port ?? "missing"}; platformServices says ${spec.port}`);
    }
    expect(problems).toEqual([]);
  });
});

// kubectl (with kustomize built in) is not part of CI (.ci/run); where it is, the
// rendered output must be the same objects, all valid.
const kubectl = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" });
const haveKubectl = !kubectl.error && kubectl.status === 0;

describe.skipIf(!haveKubectl)("kubectl kustomize (where kubectl is installed)", () => {
  it.each(roots)("renders %s to the objects the files hold, each valid", async (root) => {
    const result = spawnSync("kubectl", ["kustomize", root], { cwd: repoRoot, encoding: "utf8", timeout: 60_000 });
    if (result.status !== 0) expect.fail(`kubectl kustomize ${root} failed: ${result.stderr.trim()}`);
    const rendered = parseAllDocuments(result.stdout);
    const docs = (Array.isArray(rendered) ? rendered : [rendered]).map((d) => d.toJS() as KubeObject).filter(Boolean);
    const problems: string[] = [];
    const key = (o: KubeObject) => `${o.kind ?? "?"} ${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? "?"}`;
    const fromFiles = new Set(manifests.filter((m) => m.file.startsWith(`${root}/`) || reachedFrom(root, m.file)).map((m) => key(m.object)));
    for (const doc of docs) {
      const name = key(doc).replace(/-[a-z0-9]{10}$/, "");
      if (!fromFiles.has(name)) problems.push(`kubectl kustomize ${root} renders ${key(doc)}, which no file under istio/ holds`);
      const Model = await loadModel(doc.apiVersion ?? "", doc.kind ?? "");
      if (!Model) problems.push(`kubectl kustomize ${root}: unknown kind ${doc.kind ?? "?"} in ${doc.apiVersion ?? "?"}`);
      else {
        try {
          new Model(doc).validate();
        } catch (err) {
          problems.push(`kubectl kustomize ${root}: ${key(doc)}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    expect(docs.length, `objects rendered from ${root}`).toBe(fromFiles.size);
    expect(problems).toEqual([]);
  });
});

/** Whether `file` (e.g. deploy/prometheus's generated ConfigMap) is reached from `root` through its kustomizations. */
function reachedFrom(root: string, file: string): boolean {
  const seen = new Set<string>();
  const visit = (dir: string): boolean => {
    if (seen.has(dir)) return false;
    seen.add(dir);
    const k = parse(readFileSync(join(repoRoot, dir, "kustomization.yaml"), "utf8")) as Kustomization;
    if (file === `${dir}/kustomization.yaml`) return true;
    return (Array.isArray(k.resources) ? k.resources : []).some((entry) => {
      const target = rel(resolve(repoRoot, dir, String(entry)));
      if (target === file) return true;
      return existsSync(join(repoRoot, target, "kustomization.yaml")) && visit(target);
    });
  };
  return visit(root);
}
