// Creates the first admin when there are no users yet. Prints one JSON line:
// {"created":true,"email":...} or {"created":false}. `npm start` runs it once.
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ConfigError, createLogger, createPool, inTransaction, loadConfig, migrate, url } from "@adminkiosk/runtime";
import { recordAudit } from "./audit.js";
import { hashPassword } from "./passwords.js";
import { users } from "./store.js";

const config = loadConfig({
  DATABASE_URL: url(["postgres:", "postgresql:"]),
  ADMIN_EMAIL: z.string().email(),
  ADMIN_PASSWORD: z.string().min(12, "must be at least 12 characters"),
  PASSWORD_SCRYPT_LOG_N: z.coerce.number().int().min(10).max(20).default(15),
  LOG_LEVEL: z.string().default("warn"),
});
const log = createLogger("auth-bootstrap", config.LOG_LEVEL);
await migrate(config.DATABASE_URL, "auth", fileURLToPath(new URL("../migrations", import.meta.url)), log);
const pool = createPool(config.DATABASE_URL, "auth", log, 1);
try {
  const passwordHash = await hashPassword(config.ADMIN_PASSWORD, config.PASSWORD_SCRYPT_LOG_N);
  const created = await inTransaction(pool, async (tx) => {
    await tx.query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE");
    if ((await users.count(tx)) > 0) return undefined;
    const user = await users.insert(tx, { email: config.ADMIN_EMAIL.toLowerCase(), displayName: "Administrator", role: "admin", passwordHash });
    await recordAudit(tx, undefined, "user.created", user.user_id, { email: user.email, role: "admin", by: "bootstrap" }, "bootstrap");
    return user;
  });
  console.log(JSON.stringify(created ? { created: true, email: created.email } : { created: false }));
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exitCode = 1;
} finally {
  await pool.end();
}
