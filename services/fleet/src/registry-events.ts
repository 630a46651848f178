// The kiosk registry's events (stream FLEET, fleet.kiosk.<id>.created|updated|deleted):
// written to fleet's outbox in the change's transaction, published by the outbox relay
// after the commit. They carry the kiosk's labels (group, tags) and, when the change came
// with its row, its location after the change, so a service that groups or matches by them
// (notifications; customers' nearby back-in-stock requests) keeps its own copy without
// reading fleet's database.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { KioskRegistryEventSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/events_pb";
import { enqueueEvent, enqueueEvents, fleetSubjects, type KioskRegistryEventKind, type PoolClient } from "@adminkiosk/runtime";

type RegistryKiosk = { kiosk_id: string; group_id: string; tags: string[]; latitude?: number | null; longitude?: number | null; address?: string | null };

/** The kiosk's location, when the row has one (rows of bulk label changes carry none). */
const locationOf = (k: RegistryKiosk) =>
  k.latitude === null || k.latitude === undefined || k.longitude === null || k.longitude === undefined ? undefined : { latitude: k.latitude, longitude: k.longitude, address: k.address ?? "" };

export async function recordRegistryEvent(
  tx: PoolClient,
  kind: KioskRegistryEventKind,
  kiosk: RegistryKiosk,
): Promise<void> {
  // The clock now, not the transaction's start: the kiosk's row is locked by this change,
  // so a later change of the same kiosk always carries a later time.
  const { rows } = await tx.query<{ now: Date }>("SELECT clock_timestamp() AS now");
  await enqueueEvent(
    tx,
    fleetSubjects.kiosk(kiosk.kiosk_id, kind),
    KioskRegistryEventSchema,
    create(KioskRegistryEventSchema, {
      kioskId: kiosk.kiosk_id,
      groupId: kiosk.group_id,
      tags: kiosk.tags,
      deleted: kind === "deleted",
      time: timestampFromDate(rows[0]!.now),
      location: locationOf(kiosk),
    }),
  );
}

/** recordRegistryEvent for many kiosks changed by one statement (bulk actions): one insert. */
export async function recordRegistryEvents(tx: PoolClient, kind: KioskRegistryEventKind, kiosks: RegistryKiosk[]): Promise<void> {
  if (kiosks.length === 0) return;
  const { rows } = await tx.query<{ now: Date }>("SELECT clock_timestamp() AS now");
  const time = timestampFromDate(rows[0]!.now);
  await enqueueEvents(
    tx,
    KioskRegistryEventSchema,
    kiosks.map((k) => ({
      subject: fleetSubjects.kiosk(k.kiosk_id, kind),
      message: create(KioskRegistryEventSchema, { kioskId: k.kiosk_id, groupId: k.group_id, tags: k.tags, deleted: kind === "deleted", time, location: locationOf(k) }),
    })),
  );
}
