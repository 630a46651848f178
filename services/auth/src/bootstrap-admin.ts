// Creates the first admin when there are no users yet. Prints one JSON line:
// {"created":true,"email":...} or {"created":false}. `npm start` runs it at every
// start; docker-compose and Kubernetes run it as a one-shot job.
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ConfigError, createLogger, createPool, inTransaction, loadConfig, migrate, requireEmail, url } from "@adminkiosk/runtime";
import { recordAudit } from "./audit.js";
import { hashPassword } from "./passwords.js";
import { users } from "./store.js";

async function main() {
  const config = loadConfig({
    DATABASE_URL: url(["postgres:", "postgresql:"]),
    ADMIN_EMAIL: z.string().min(1),
    ADMIN_PASSWORD: z.string().min(12, "must be at least 12 characters"),
    PASSWORD_SCRYPT_LOG_N: z.coerce.number().int().min(10).max(20).default(15),
    LOG_LEVEL: z.string().default("warn"),
  });
  const email = requireEmail("ADMIN_EMAIL", config.ADMIN_EMAIL);
  const log = createLogger("auth-bootstrap", config.LOG_LEVEL);
  await migrate(config.DATABASE_URL, "auth", fileURLToPath(new URL("../migrations", import.meta.url)), log);
  const pool = createPool(config.DATABASE_URL, "auth", log, 1);
  try {
    const created = await inTransaction(pool, async (tx) => {
      await tx.query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE");
      if ((await users.count(tx)) > 0) return undefined;
      const passwordHash = await hashPassword(config.ADMIN_PASSWORD, config.PASSWORD_SCRYPT_LOG_N);
      const user = await users.insert(tx, { email, displayName: "Administrator", role: "admin", passwordHash });
      await recordAudit(tx, undefined, "user.created", user.user_id, { email: user.email, role: "admin", by: "bootstrap" }, "bootstrap");
      return user;
    });
    console.log(JSON.stringify(created ? { created: true, email: created.email } : { created: false }));
  } finally {
    await pool.end();
  }
}

main().catch((err: unknown) => {
  console.error(`auth bootstrap-admin: ${err instanceof Error && (err instanceof ConfigError || err.name === "ConnectError") ? err.message : String(err)}`);
  process.exit(err instanceof ConfigError || (err instanceof Error && err.name === "ConnectError") ? 2 : 1);
});
