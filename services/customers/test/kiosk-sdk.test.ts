// The kiosk SDK's customers methods (packages/kiosk-sdk/src/customers.ts) against a real customers
// process, as a kiosk's screen uses them: enrol, scan, attach to a sale, redeem (a retry with the
// same key redeems once), a refusal naming the field, a rating and a call for help.
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attachMember, callForHelp, enrollMember, HelpCaller, identifyMember, rateProduct, redeemPoints, requestBackInStock, type CustomersOptions } from "@adminkiosk/kiosk-sdk";
import { eventually } from "@adminkiosk/devstack";
import { startCustomers, type CustomersFixture } from "./fixture.js";

let f: CustomersFixture;
let at: CustomersOptions;
const kiosk = `sdk-${process.pid}`;

beforeAll(async () => {
  f = await startCustomers();
  at = { customersAddress: f.customers.url, credential: await f.device(kiosk) };
}, 120_000);
afterAll(async () => f?.stop());

describe("the kiosk SDK's customers methods", () => {
  it("enrol, scan, attach, redeem once per key, rate, ask for back-in-stock and call for help", async () => {
    const member = await enrollMember({ email: "sdk.buyer@example.com", marketingEmail: true }, at);
    expect((await identifyMember(member.qrToken, at)).memberId).toBe(member.memberId);
    const orderId = randomUUID();
    expect((await attachMember(member.cardNumber, orderId, at)).pointsGranted).toBe(false);
    await f.publishCompleted({ orderId, kioskId: kiosk, totalMinor: 1000n, lines: [{ sku: "tea", quantity: 1n, totalMinor: 1000n }] });
    await expect.poll(async () => (await identifyMember(member.cardNumber, at)).pointsBalance, eventually).toBe(10n);
    const key = randomUUID();
    expect(await redeemPoints(member.cardNumber, 4n, key, at)).toBe(6n);
    expect(await redeemPoints(member.cardNumber, 4n, key, at)).toBe(6n);
    const over = await redeemPoints(member.cardNumber, 7n, randomUUID(), at).catch((e: grpc.ServiceError) => e);
    expect(over).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringMatching(/^points:/) });
    await rateProduct(orderId, "tea", 5, "Lovely", at);
    await requestBackInStock("tea", "+420601234567", at);
    // Nearby kiosks too; a national number in the default region (CZ).
    await requestBackInStock("coffee", "601 234 567", at, { nearbyKm: 3, sameGroup: true });
    const bad = await requestBackInStock("coffee", "+420 123", at).catch((e: grpc.ServiceError) => e);
    expect(bad).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^phone:/) });
    expect(await callForHelp(HelpCaller.TECHNICIAN, "paper jam", at)).toMatch(/^[0-9a-f-]{36}$/);
  });
});
