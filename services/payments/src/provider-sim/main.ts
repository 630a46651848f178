// The simulated payment provider as its own process (npm start, tests, docker-compose):
// see simulator.ts. Not for production: it takes no money and forgets everything.
import { z } from "zod";
import { baseConfigShape, createLogger, duration, initTracing, loadConfig, onShutdownSignal, port, runService, tracingConfigShape, url } from "@adminkiosk/runtime";
import { createSimulator } from "./simulator.js";

export const providerSimConfigShape = {
  HOST: baseConfigShape.HOST,
  LOG_LEVEL: baseConfigShape.LOG_LEVEL,
  PROVIDER_SIM_PORT: port(7106),
  /** The API key payments must present. */
  PROVIDER_API_KEY: z.string().min(32, "must be at least 32 characters"),
  /** Signs the webhooks; payments holds the same secret. */
  PROVIDER_WEBHOOK_SECRET: z.string().min(32, "must be at least 32 characters"),
  /** Where the webhooks go: payments' /webhooks/provider. */
  PROVIDER_WEBHOOK_URL: url(["http:", "https:"]),
  WEBHOOK_DELAY: duration("200ms"),
  ...tracingConfigShape,
};

async function main() {
  const config = loadConfig(providerSimConfigShape);
  const log = createLogger("provider-sim", config.LOG_LEVEL);
  await initTracing("provider-sim", config);
  const server = createSimulator({
    apiKey: config.PROVIDER_API_KEY,
    webhookUrl: config.PROVIDER_WEBHOOK_URL,
    webhookSecret: config.PROVIDER_WEBHOOK_SECRET,
    webhookDelayMs: config.WEBHOOK_DELAY,
    log,
  });
  await new Promise<void>((resolve) => server.listen(config.PROVIDER_SIM_PORT, config.HOST, resolve));
  log.info({ url: `http://${config.HOST}:${config.PROVIDER_SIM_PORT}`, webhookUrl: config.PROVIDER_WEBHOOK_URL }, "listening");
  onShutdownSignal(log, async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
}

runService("provider-sim", main);
