// An event's venue place (venue_latitude/venue_longitude, optional: both or neither) and the
// kiosks leasing its seats, as fleet reads them with its own service credential for its
// rollouts' event blackouts (docs/rollouts.md): bad input names the field and changes nothing;
// a kiosk may not list other kiosks' leases.
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { LeaseService } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import { failure } from "../../../test/support/auth.js";
import { createEvent, startCatalog, type CatalogFixture } from "./fixture.js";

let f: CatalogFixture;
beforeAll(async () => {
  f = await startCatalog();
});
afterAll(() => f?.stop());

const admin = () => f.as(EventService, f.tokens.admin);

describe("event venue place", () => {
  it("is kept, changed and cleared; half a place or one out of range names the field and changes nothing", async () => {
    const event = await createEvent(f, 1, 2);
    expect(event.venueLatitude).toBeUndefined();
    const set = (await admin().updateEvent({ eventId: event.eventId, venueLatitude: 50.087, venueLongitude: 14.421 })).event!;
    expect([set.venueLatitude, set.venueLongitude]).toEqual([50.087, 14.421]);
    // Other fields leave it as it is.
    expect((await admin().updateEvent({ eventId: event.eventId, name: "Renamed" })).event!.venueLatitude).toBe(50.087);

    const refused = async (req: Parameters<ReturnType<typeof admin>["updateEvent"]>[0], field: string) => {
      const err = await failure(admin().updateEvent(req));
      expect(err.code, err.message).toBe(Code.InvalidArgument);
      expect(err.message).toContain(field);
    };
    await refused({ eventId: event.eventId, venueLatitude: 10 }, "venue_longitude");
    await refused({ eventId: event.eventId, venueLatitude: 91, venueLongitude: 0 }, "venue_latitude");
    await refused({ eventId: event.eventId, venueLatitude: 0, venueLongitude: -180.5 }, "venue_longitude");
    await refused({ eventId: event.eventId, clearVenueLocation: true, venueLatitude: 1, venueLongitude: 1 }, "clear_venue_location");
    const created = await failure(
      admin().createEvent({ event: { name: "x", venue: "y", startTime: event.startTime, venueLongitude: 3, priceTiers: event.priceTiers, sections: [{ sectionId: "A", name: "A", rows: [{ rowId: "1", seats: [{ number: "1", tierId: "std" }] }] }] } }),
    );
    expect(created.code).toBe(Code.InvalidArgument);
    expect(created.message).toContain("event.venue_latitude");
    expect((await admin().getEvent({ eventId: event.eventId })).event!.venueLatitude).toBe(50.087);

    const cleared = (await admin().updateEvent({ eventId: event.eventId, clearVenueLocation: true })).event!;
    expect([cleared.venueLatitude, cleared.venueLongitude]).toEqual([undefined, undefined]);
  });

  it("lists the kiosks leasing an event's seats to fleet (its service credential), not to a kiosk", async () => {
    const event = await createEvent(f, 1, 2);
    const seatId = (await f.as(EventService, f.tokens.viewer).getSeatAvailability({ eventId: event.eventId })).seats[0]!.seatId;
    await f.as(LeaseService, f.tokens.operator).grantLease({ leaseId: randomUUID(), kioskId: "venue-box-office", seats: [{ eventId: event.eventId, seatId }] });
    const asFleet = f.asService("fleet", EventService);
    const listed = (await asFleet.listEvents({ includeLeaseKiosks: true, pageSize: 200 })).events.find((e) => e.eventId === event.eventId)!;
    expect(listed.leaseKioskIds).toEqual(["venue-box-office"]);
    // Without asking, none.
    expect((await asFleet.listEvents({ pageSize: 200 })).events.find((e) => e.eventId === event.eventId)!.leaseKioskIds).toEqual([]);
    const device = f.as(EventService, await f.device("venue-other"));
    expect((await failure(device.listEvents({ includeLeaseKiosks: true }))).code).toBe(Code.PermissionDenied);
    // fleet reads events only: creating one is not for it.
    expect((await failure(asFleet.createEvent({ event: { name: "x" } }))).code).toBe(Code.PermissionDenied);
  });
});
