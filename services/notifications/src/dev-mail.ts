// DeliveryService.ListDevMail: the development mailbox's messages (dev-mailbox/, GET /messages
// on DEV_MAILBOX_URL), relayed so the admin web reads them through its one transport, behind
// the same sign-in and roles as everything else. Not configured (production): FailedPrecondition.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ListDevMailResponseSchema, type ListDevMailResponse } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { failedPrecondition, invalidArgument, unavailable } from "@adminkiosk/runtime";
import type { StoredMail } from "./dev-mailbox/mailbox.js";

const maxText = 64 * 1024;

export async function listDevMail(mailboxUrl: string | undefined, limit: number, to: string): Promise<ListDevMailResponse> {
  if (!mailboxUrl) throw failedPrecondition("no development mailbox here (DEV_MAILBOX_URL is not set; npm start sets it)");
  const address = to.trim().toLowerCase();
  if (address.length > 320) throw invalidArgument("to", "must be at most 320 characters");
  let stored: StoredMail[];
  try {
    const res = await fetch(new URL("/messages", mailboxUrl), { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    stored = ((await res.json()) as { messages: StoredMail[] }).messages;
  } catch (err) {
    throw unavailable("the development mailbox did not answer", err);
  }
  const matching = address ? stored.filter((m) => m.to.some((t) => t.toLowerCase() === address)) : stored;
  return create(ListDevMailResponseSchema, {
    total: matching.length,
    messages: matching
      .slice(-limit)
      .reverse()
      .map((m) => ({ id: BigInt(m.id), from: m.from, to: m.to, subject: m.subject, text: (m.text ?? "").slice(0, maxText), receiveTime: timestampFromDate(new Date(m.receivedAt)) })),
  });
}
