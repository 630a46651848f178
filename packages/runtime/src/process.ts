// How every service's main() ends when start-up fails: a configuration error is one
// line naming the variable and exit code 2; anything else is logged with exit code 1.
import { ConfigError } from "./config.js";

export function runService(name: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    if (err instanceof ConfigError) {
      console.error(`${name}: ${err.message}`);
      process.exit(2);
    }
    console.error(`${name}: failed to start:`, err);
    process.exit(1);
  });
}
