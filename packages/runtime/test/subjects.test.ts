// The subjects producers publish on are the ones consumers parse back: one definition
// (packages/runtime/src/subjects.ts) on both sides.
import { describe, expect, it } from "vitest";
import { authSubjects, catalogSubjects, fleetSubjects, linkSubjects, ordersSubjects, paymentsSubjects } from "../src/subjects.js";

describe("subjects", () => {
  it("link: every kind a producer builds parses back to its kiosk and kind, and matches the consumers' filter", () => {
    const built = [
      [linkSubjects.connected("k-1"), "connected"],
      [linkSubjects.disconnected("k-1"), "disconnected"],
      [linkSubjects.telemetry("k-1"), "telemetry"],
      [linkSubjects.command("k-1", "ack"), "command.ack"],
      [linkSubjects.command("k-1", "result"), "command.result"],
      [linkSubjects.configApplied("k-1"), "config.applied"],
    ] as const;
    for (const [subject, kind] of built) {
      expect(linkSubjects.parse(subject)).toEqual({ kioskId: "k-1", kind });
      expect(subject.startsWith(linkSubjects.allKioskEvents.slice(0, -1))).toBe(true);
    }
    expect(linkSubjects.parse("link.kiosk.k-1.something.new")).toBeUndefined();
    expect(linkSubjects.parse("fleet.changed.k-1.kiosk")).toBeUndefined();
    // Core NATS between fleet and link replicas: outside stream LINK, which would store them.
    expect(linkSubjects.deliveries.startsWith("link.")).toBe(false);
    expect(linkSubjects.replaced("pod.example-7")).toBe("linkreplica.pod_example-7.replaced");
  });

  it("payments, catalog, fleet, auth: built and parsed alike; others' subjects are not mistaken for them", () => {
    expect(paymentsSubjects.parseIntent(paymentsSubjects.intent("6f1c", "succeeded"))).toEqual({ intentId: "6f1c", kind: "succeeded" });
    expect(paymentsSubjects.parseIntent("payments.intent.6f1c.exploded")).toBeUndefined();
    expect(catalogSubjects.parseReservation(catalogSubjects.reservationExpired("r-1"))).toEqual({ reservationId: "r-1", kind: "expired" });
    expect(catalogSubjects.parseReservation(catalogSubjects.stockLow("k-1"))).toBeUndefined();
    expect(fleetSubjects.parseChanged(fleetSubjects.changed("k-1", "command"))).toEqual({ kioskId: "k-1", kind: "command" });
    expect(fleetSubjects.parseChanged("fleet.changed.k-1.weather")).toBeUndefined();
    // The registry's events are in stream FLEET; the replicas' core NATS changes are not.
    expect(fleetSubjects.parseKiosk(fleetSubjects.kiosk("k-1", "updated"))).toEqual({ kioskId: "k-1", kind: "updated" });
    expect(fleetSubjects.parseKiosk(fleetSubjects.changed("k-1", "kiosk"))).toBeUndefined();
    expect(fleetSubjects.stream.subjects.some((s) => fleetSubjects.changed("k-1", "kiosk").startsWith(s.slice(0, -1)))).toBe(false);
    expect(authSubjects.parseDeviceRevoked(authSubjects.deviceRevoked("k-1"))).toEqual({ kioskId: "k-1" });
    expect(ordersSubjects.order("o-1", "completed")).toBe("orders.order.o-1.completed");
  });

  it("refuses an id that would change a subject's shape (a dot, a wildcard, white space)", () => {
    for (const bad of ["a.b", "*", ">", "a b", ""]) expect(() => linkSubjects.telemetry(bad)).toThrow(/cannot be a subject token/);
  });
});
