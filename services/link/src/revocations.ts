// Whether a device credential was revoked, asked for every stream that opens: the runtime's
// batched check (one SMISMEMBER per tick for the streams opening together in a reconnect storm).
export { batchedRevocationCheck } from "@adminkiosk/runtime";
