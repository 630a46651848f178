// Rollouts (issue 17): a release taken to kiosks in waves with health gates.
//   plan.ts     waves' sizes, maintenance windows (pure)
//   gates.ts    a wave's gate: updated kiosks vs the control cohort (measure in SQL, judge pure)
//   store.ts    rows, creation (target frozen, waves by hash), the contract's Rollout, events, audit
//   engine.ts   the tick every replica runs: sends installs, bakes, gates, rolls back
//   service.ts  RolloutService
export { rolloutRoutes } from "./service.js";
export { startRolloutEngine } from "./engine.js";
export { judge, measure, defaultGate } from "./gates.js";
export { waveEnds, inWindow, quietestHours } from "./plan.js";
