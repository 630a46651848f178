// Calls for help from a kiosk: recorded, and customers.help.<kiosk>.requested queued in the same
// transaction for notifications, which opens the help_requested alert for the kiosk's operators.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { HelpRequestedEventSchema } from "@adminkiosk/proto/adminkiosk/customers/v1/events_pb";
import { HelpCaller } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { customersSubjects, enqueueEvent, inTransaction, type Pool } from "@adminkiosk/runtime";

export async function callForHelp(pool: Pool, r: { kioskId: string; caller: HelpCaller; message: string }): Promise<{ id: string; at: Date }> {
  return inTransaction(pool, async (tx) => {
    const { rows } = await tx.query<{ help_request_id: string; requested_at: Date }>(
      "INSERT INTO help_requests (kiosk_id, caller, message) VALUES ($1, $2, $3) RETURNING help_request_id, requested_at",
      [r.kioskId, r.caller === HelpCaller.TECHNICIAN ? "technician" : "buyer", r.message],
    );
    const row = rows[0]!;
    const event = create(HelpRequestedEventSchema, { helpRequestId: row.help_request_id, kioskId: r.kioskId, caller: r.caller, message: r.message, time: timestampFromDate(row.requested_at) });
    await enqueueEvent(tx, customersSubjects.helpRequested(r.kioskId), HelpRequestedEventSchema, event);
    return { id: row.help_request_id, at: row.requested_at };
  });
}
