// The kiosk side of the platform (reference firmware): enrollment at auth and the
// stream to link. The simulator (./simulator) runs many of these at once.
export { backoffDelay, defaultBackoff, type BackoffOptions } from "./backoff.js";
export {
  KioskClient,
  maxBatchSamples,
  type CommandHandler,
  type CommandKind,
  type CommandPayload,
  type KioskClientEvents,
  type ConfigHandler,
  type KioskClientOptions,
  type TelemetrySampleInit,
  type UpdateStatusInit,
} from "./client.js";
export { enroll, renewCredential, type Enrollment } from "./enroll.js";
export {
  compareVersions,
  downloadResumable,
  fetchReleaseKeys,
  InstallFailed,
  Updater,
  verifySignature,
  type BootInfo,
  type ReleaseKindName,
  type TrustedKeys,
  type UpdaterOptions,
} from "./updates.js";
// The simulator (also "@adminkiosk/kiosk-sdk/simulator"), for tests that drive simulated kiosks.
export { lowSalesFactor, startSimulator, type BadVersionKind, type SimKiosk, type Simulator, type SimulatorOptions } from "./simulator.js";
export { grpcTarget } from "./grpc.js";
export {
  fileStore,
  memoryStore,
  OfflineRefusal,
  OfflineSaleOutcome,
  OfflineSeller,
  type OfflineSaleInit,
  type OfflineSellerOptions,
  type OfflineState,
  type OfflineStore,
  type ProvisionalSale,
} from "./offline.js";
export { requestReceipt, sell, type ReceiptOptions, type SellOptions } from "./sales.js";
export { ReceiptRequestState } from "@adminkiosk/proto/adminkiosk/notifications/v1/receipts_pb";
export { recommendations, searchProducts, type AiOptions } from "./shop.js";
export {
  attachMember,
  callForHelp,
  enrollMember,
  HelpCaller,
  identifyMember,
  rateProduct,
  redeemPoints,
  requestBackInStock,
  scannedMember,
  type BackInStockScope,
  type CustomersOptions,
} from "./customers.js";
