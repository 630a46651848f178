// The provider's webhook signature: the runtime's signed-webhook scheme
// (packages/runtime/src/webhook-signature.ts) under the header Provider-Signature.
import { verifySignature as verify } from "@adminkiosk/runtime";

export { sign, signatureFor, WebhookRejected, type SignatureRejection } from "@adminkiosk/runtime";

export const signatureHeader = "provider-signature";

/** Throws WebhookRejected unless `header` signs `body` with one of `secrets` within `toleranceMs`. */
export function verifySignature(secrets: string[], header: string | undefined, body: Buffer, toleranceMs: number, nowMs = Date.now()): void {
  verify(secrets, header, body, toleranceMs, nowMs, signatureHeader);
}
