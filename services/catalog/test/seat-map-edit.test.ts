// Replacing an event's seat map (UpdateEventSeatMap): while no seat is sold, held or
// leased, the new map replaces the old one (seats, tiers, GetEvent, availability, what
// Reserve sells); once a seat is taken it is refused naming the seat; a bad map is
// InvalidArgument naming the field and changes nothing; only people who create events may.
import { Code, ConnectError } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventService, ReservationService, type Section } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { LeaseService } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { SectionSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { failure } from "../../../test/support/auth.js";
import { createEvent, startCatalog, type CatalogFixture } from "./fixture.js";

let f: CatalogFixture;
beforeAll(async () => {
  f = await startCatalog();
});
afterAll(() => f?.stop());

const admin = () => f.as(EventService, f.tokens.admin);
const seatIds = async (eventId: string) => (await f.as(EventService, f.tokens.viewer).getSeatAvailability({ eventId })).seats.map((s) => s.seatId);

const tiers = [
  { tierId: "std", name: "Standard", priceMinor: 3000n, currency: "EUR" },
  { tierId: "box", name: "Box", priceMinor: 15000n, currency: "EUR" },
];
/** Section A with one row of 2 standard seats, and a new section B with one box seat. */
const newSections: MessageInitShape<typeof SectionSchema>[] = [
  { sectionId: "A", name: "Stalls", rows: [{ rowId: "1", seats: [{ number: "1", tierId: "std" }, { number: "2", tierId: "std" }] }] },
  { sectionId: "B", name: "Boxes", rows: [{ rowId: "1", seats: [{ number: "1", tierId: "box" }] }] },
];

describe("UpdateEventSeatMap", () => {
  it("replaces the seats and tiers: GetEvent, availability and Reserve all see the new map", async () => {
    const event = await createEvent(f, 2, 3);
    expect(event.seatCount).toBe(6);
    const { event: updated } = await admin().updateEventSeatMap({ eventId: event.eventId, priceTiers: tiers, sections: newSections });
    expect(updated?.seatCount).toBe(3);
    expect(updated?.priceTiers.map((t) => t.tierId)).toEqual(["box", "std"]);
    expect(updated?.sections.flatMap((s: Section) => s.rows.flatMap((r) => r.seats.map((p) => p.seatId)))).toEqual(["A-1-1", "A-1-2", "B-1-1"]);
    expect((await admin().getEvent({ eventId: event.eventId })).event?.seatCount).toBe(3);
    expect(await seatIds(event.eventId)).toEqual(["A-1-1", "A-1-2", "B-1-1"]);

    const orders = f.asOrders(ReservationService);
    const { reservation } = await orders.reserve({ reservationId: randomUUID(), kioskId: "sme-k1", seats: [{ eventId: event.eventId, seatId: "B-1-1" }] });
    expect(reservation?.totalMinor).toBe(15000n);
    const gone = await failure(orders.reserve({ reservationId: randomUUID(), kioskId: "sme-k1", seats: [{ eventId: event.eventId, seatId: "A-2-1" }] }));
    expect(gone.code).toBe(Code.NotFound);
  });

  it("is refused while a seat is held, allowed once released, refused again once a seat is sold — naming the seat", async () => {
    const event = await createEvent(f, 1, 3);
    const orders = f.asOrders(ReservationService);
    const held = randomUUID();
    await orders.reserve({ reservationId: held, kioskId: "sme-k2", seats: [{ eventId: event.eventId, seatId: "A-1-2" }] });
    const whileHeld = await failure(admin().updateEventSeatMap({ eventId: event.eventId, priceTiers: tiers, sections: newSections }));
    expect(whileHeld.code).toBe(Code.FailedPrecondition);
    expect(whileHeld.rawMessage).toMatch(/seat A-1-2 is held/);
    expect(await seatIds(event.eventId)).toEqual(["A-1-1", "A-1-2", "A-1-3"]);

    await orders.releaseReservation({ reservationId: held });
    await admin().updateEventSeatMap({ eventId: event.eventId, priceTiers: tiers, sections: newSections });
    expect(await seatIds(event.eventId)).toEqual(["A-1-1", "A-1-2", "B-1-1"]);

    const sold = randomUUID();
    await orders.reserve({ reservationId: sold, kioskId: "sme-k2", seats: [{ eventId: event.eventId, seatId: "A-1-1" }] });
    await orders.commitReservation({ reservationId: sold });
    const afterSale = await failure(admin().updateEventSeatMap({ eventId: event.eventId, priceTiers: tiers, sections: newSections.slice(0, 1) }));
    expect(afterSale.code).toBe(Code.FailedPrecondition);
    expect(afterSale.rawMessage).toMatch(/seat A-1-1 is sold/);
    expect(await seatIds(event.eventId)).toEqual(["A-1-1", "A-1-2", "B-1-1"]);
  });

  it("is refused while a kiosk's lease holds a seat, naming the seat and the kiosk", async () => {
    const event = await createEvent(f, 1, 2);
    await f.as(LeaseService, f.tokens.operator).grantLease({ leaseId: randomUUID(), kioskId: "sme-lease", seats: [{ eventId: event.eventId, seatId: "A-1-2" }] });
    const err = await failure(admin().updateEventSeatMap({ eventId: event.eventId, priceTiers: tiers, sections: newSections }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toMatch(/seat A-1-2 is leased to kiosk sme-lease/);
  });

  it("a sale racing the edit lands before it (and blocks it) or after it, on the new map — never on the old map after the edit", async () => {
    const orders = f.asOrders(ReservationService);
    for (let round = 0; round < 8; round++) {
      const event = await createEvent(f, 1, 2); // A-1-1 std 3000, A-1-2 vip 9000
      // The new map keeps A-1-2, now in tier "box" at 15000, and drops A-1-1.
      const sections = [{ sectionId: "A", name: "Stalls", rows: [{ rowId: "1", seats: [{ number: "2", tierId: "box" }] }] }];
      const [sale, edit] = await Promise.allSettled([
        orders.reserve({ reservationId: randomUUID(), kioskId: "sme-race", seats: [{ eventId: event.eventId, seatId: round % 2 ? "A-1-1" : "A-1-2" }] }),
        admin().updateEventSeatMap({ eventId: event.eventId, priceTiers: tiers, sections }),
      ]);
      if (edit.status === "rejected") {
        // The sale came first and holds its seat; the old map stays.
        expect(sale.status, `round ${round}`).toBe("fulfilled");
        expect(ConnectError.from(edit.reason).code).toBe(Code.FailedPrecondition);
        expect(await seatIds(event.eventId)).toEqual(["A-1-1", "A-1-2"]);
      } else if (sale.status === "fulfilled") {
        // The edit came first: the sale is on the new map — A-1-2 at its new price (A-1-1 is gone).
        expect(sale.value.reservation?.seats.map((x) => [x.seatId, x.priceMinor])).toEqual([["A-1-2", 15000n]]);
      } else {
        expect(ConnectError.from(sale.reason).code, `round ${round}`).toBe(Code.NotFound);
        expect(round % 2).toBe(1);
      }
    }
  });

  it("a bad map is InvalidArgument naming the field, and the old map stays", async () => {
    const event = await createEvent(f, 1, 2);
    const unknownTier = await failure(
      admin().updateEventSeatMap({
        eventId: event.eventId,
        priceTiers: tiers,
        sections: [{ sectionId: "A", name: "Stalls", rows: [{ rowId: "1", seats: [{ number: "1", tierId: "std" }, { number: "2", tierId: "vip" }] }] }],
      }),
    );
    expect(unknownTier.code).toBe(Code.InvalidArgument);
    expect(unknownTier.rawMessage).toContain("sections[0].rows[0].seats[1].tier_id");
    const twice = await failure(admin().updateEventSeatMap({ eventId: event.eventId, priceTiers: tiers, sections: [newSections[0]!, newSections[0]!] }));
    expect(twice.code).toBe(Code.InvalidArgument);
    expect(twice.rawMessage).toContain("sections[1].section_id");
    const noTiers = await failure(admin().updateEventSeatMap({ eventId: event.eventId, priceTiers: [], sections: newSections }));
    expect(noTiers.rawMessage).toContain("price_tiers");
    expect((await failure(admin().updateEventSeatMap({ eventId: "nope", priceTiers: tiers, sections: newSections }))).rawMessage).toContain("event_id");
    expect((await failure(admin().updateEventSeatMap({ eventId: randomUUID(), priceTiers: tiers, sections: newSections }))).code).toBe(Code.NotFound);
    expect(await seatIds(event.eventId)).toEqual(["A-1-1", "A-1-2"]);
  });

  it("a kiosk's device credential and a viewer are PermissionDenied, and nothing changes", async () => {
    const event = await createEvent(f, 1, 2);
    for (const token of [await f.device("sme-k3"), f.tokens.viewer]) {
      const err = await failure(f.as(EventService, token).updateEventSeatMap({ eventId: event.eventId, priceTiers: tiers, sections: newSections }));
      expect(err.code).toBe(Code.PermissionDenied);
    }
    expect(await seatIds(event.eventId)).toEqual(["A-1-1", "A-1-2"]);
  });
});
