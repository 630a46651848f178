export * from "./infra.js";
export * from "./services.js";
export * from "./testing.js";
export * from "./traces.js";
export * from "./web.js";
export * from "./oidc.js";
