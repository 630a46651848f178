// Releases' part of fleet's wire-up (main.ts): the signing keys and the artifact store from
// the validated config, refused at start when they are not usable.
import { join } from "node:path";
import type { Logger } from "@adminkiosk/runtime";
import type { Registry } from "prom-client";
import type { FleetConfig } from "../config.js";
import { fileArtifactStore, type ArtifactStore } from "./artifacts.js";
import { artifactBytesServed, artifactRequests } from "./http.js";
import { s3ArtifactStore } from "./s3.js";
import { createReleaseKeys, type ReleaseKeys } from "./signing.js";

export { artifactRoutes } from "./http.js";

export interface Releases {
  store: ArtifactStore;
  keys: ReleaseKeys;
}

export function releasesFromConfig(config: FleetConfig, log: Logger): Releases {
  const keys = createReleaseKeys(config.FLEET_RELEASE_SIGNING_KEY, config.FLEET_RELEASE_PREVIOUS_KEYS);
  if (!keys.signer) log.warn("FLEET_RELEASE_SIGNING_KEY is not set: CreateRelease is refused (FailedPrecondition)");
  let store: ArtifactStore;
  if (config.FLEET_ARTIFACT_STORE === "s3") {
    const missing = (["FLEET_ARTIFACT_S3_ENDPOINT", "FLEET_ARTIFACT_S3_BUCKET", "FLEET_ARTIFACT_S3_ACCESS_KEY_ID", "FLEET_ARTIFACT_S3_SECRET_ACCESS_KEY"] as const).filter((k) => config[k] === "");
    if (missing.length) throw new Error(`invalid configuration: FLEET_ARTIFACT_STORE=s3 needs ${missing.join(", ")}`);
    store = s3ArtifactStore({
      endpoint: config.FLEET_ARTIFACT_S3_ENDPOINT,
      bucket: config.FLEET_ARTIFACT_S3_BUCKET,
      region: config.FLEET_ARTIFACT_S3_REGION,
      prefix: config.FLEET_ARTIFACT_S3_PREFIX,
      credentials: {
        accessKeyId: config.FLEET_ARTIFACT_S3_ACCESS_KEY_ID,
        secretAccessKey: config.FLEET_ARTIFACT_S3_SECRET_ACCESS_KEY,
        sessionToken: config.FLEET_ARTIFACT_S3_SESSION_TOKEN || undefined,
      },
      spoolDir: join(config.FLEET_ARTIFACT_DIR, "spool"),
    });
  } else {
    store = fileArtifactStore(config.FLEET_ARTIFACT_DIR);
  }
  log.info({ store: config.FLEET_ARTIFACT_STORE, dir: config.FLEET_ARTIFACT_DIR, keyId: keys.signer?.keyId ?? "", publishedKeys: keys.keys.length }, "releases: artifact store and signing keys");
  return { store, keys };
}

export function registerReleaseMetrics(registry: Registry) {
  registry.registerMetric(artifactBytesServed);
  registry.registerMetric(artifactRequests);
}
