// The simulated SMS provider as its own process (npm start, tests): see simulator.ts. Not for
// production: it sends nothing anywhere and forgets everything.
import { z } from "zod";
import { baseConfigShape, createLogger, loadConfig, onShutdownSignal, port, runService } from "@adminkiosk/runtime";
import { createSmsSimulator } from "./simulator.js";

const smsSimConfigShape = {
  HOST: baseConfigShape.HOST,
  LOG_LEVEL: baseConfigShape.LOG_LEVEL,
  SMS_SIM_PORT: port(7109),
  /** The API key notifications must present (its SMS_API_KEY). */
  SMS_API_KEY: z.string().min(32, "must be at least 32 characters"),
  SMS_SIM_KEEP: z.coerce.number().int().min(1).max(100_000).default(1000),
};

async function main() {
  const config = loadConfig(smsSimConfigShape);
  const log = createLogger("sms-sim", config.LOG_LEVEL);
  const server = createSmsSimulator({ apiKey: config.SMS_API_KEY, keep: config.SMS_SIM_KEEP, log });
  await new Promise<void>((resolve) => server.listen(config.SMS_SIM_PORT, config.HOST, resolve));
  log.info({ url: `http://${config.HOST}:${config.SMS_SIM_PORT}` }, "listening");
  onShutdownSignal(log, async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
}

runService("sms-sim", main);
