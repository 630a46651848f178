// Retrain through the API as ai itself: what the CronJob istio/base/ai/cron-job-ai-retrain.yaml
// runs (and `kubectl create job --from=cronjob/ai-retrain …` on demand). Signs in with ai's
// service credential (auth's ServiceIdentityService; Retrain admits service "ai" beside
// admins), calls ModelService.Retrain on AI_URL and prints the outcome as one JSON line:
// {"version":"7","promoted":true,"servingVersion":"7","gate":"promoted: …"}. Exits 1 when
// the call fails (the Job's backoffLimit retries); a version the gate rejects is a success.
import { createClient } from "@connectrpc/connect";
import { z } from "zod";
import { ModelService } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { loadConfig, serviceCredentials, serviceTransport, url } from "@adminkiosk/runtime";

async function main() {
  const config = loadConfig({
    AI_URL: url(["http:", "https:"]),
    AUTH_URL: url(["http:", "https:"]),
    SERVICE_SECRET: z.string().min(32, "must be ai's client secret from auth's SERVICE_SECRETS (32+ characters)"),
    /** Feature groups to train with (comma-separated); empty: all. */
    AI_RETRAIN_FEATURE_GROUPS: z.string().default(""),
  });
  const models = createClient(ModelService, serviceTransport(config.AI_URL, serviceCredentials({ authUrl: config.AUTH_URL, service: "ai", secret: config.SERVICE_SECRET }), { upstream: "ai" }));
  const featureGroups = config.AI_RETRAIN_FEATURE_GROUPS.split(",").map((g) => g.trim()).filter(Boolean);
  // The longest deadline a service accepts (the runtime server refuses longer ones).
  const r = await models.retrain({ featureGroups }, { timeoutMs: 60_000 });
  console.log(JSON.stringify({ version: String(r.model?.version ?? 0n), promoted: r.promoted, servingVersion: String(r.servingVersion), gate: r.model?.gateReason ?? "" }));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
