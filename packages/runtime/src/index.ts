// The shared runtime: config, logs, the Connect server with health, reflection,
// metrics and authorization, PostgreSQL and Redis helpers. Deliberately small.
export * from "./access.js";
export * from "./audit.js";
export * from "./backoff.js";
export * from "./config.js";
export * from "./consumer.js";
export * from "./dead-letters.js";
export * from "./deadline.js";
export * from "./errors.js";
export * from "./health.js";
export * from "./idempotency.js";
export * from "./logger.js";
export * from "./nats.js";
export * from "./observe.js";
export * from "./outbound.js";
export * from "./outbox.js";
export * from "./postgres.js";
export * from "./principal.js";
export * from "./process.js";
export * from "./redis.js";
export * from "./request.js";
export * from "./server.js";
export * from "./subjects.js";
export * from "./tokens.js";
export * from "./validate.js";
export * from "./kiosk-status.js";
export * from "./webhook-signature.js";
