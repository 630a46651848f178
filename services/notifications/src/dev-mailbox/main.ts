// The development mailbox as its own process (npm start): see mailbox.ts.
import { z } from "zod";
import { baseConfigShape, createLogger, loadConfig, onShutdownSignal, port, runService } from "@adminkiosk/runtime";
import { startMailbox } from "./mailbox.js";

const mailboxConfigShape = {
  HOST: baseConfigShape.HOST,
  LOG_LEVEL: baseConfigShape.LOG_LEVEL,
  /** SMTP, where notifications' SMTP_URL points. */
  DEV_MAILBOX_SMTP_PORT: port(1025),
  /** GET /messages lists what arrived (JSON). */
  DEV_MAILBOX_PORT: port(7108),
  DEV_MAILBOX_KEEP: z.coerce.number().int().min(1).max(100_000).default(1000),
};

async function main() {
  const config = loadConfig(mailboxConfigShape);
  const log = createLogger("dev-mailbox", config.LOG_LEVEL);
  const mailbox = await startMailbox({
    host: config.HOST,
    smtpPort: config.DEV_MAILBOX_SMTP_PORT,
    httpPort: config.DEV_MAILBOX_PORT,
    keep: config.DEV_MAILBOX_KEEP,
    onMail: (m) => log.info({ to: m.to, subject: m.subject }, "mail received"),
  });
  log.info({ smtp: `smtp://${config.HOST}:${mailbox.smtpPort}`, url: `${mailbox.httpUrl}/messages` }, "listening");
  onShutdownSignal(log, () => mailbox.close());
}

runService("dev-mailbox", main);
