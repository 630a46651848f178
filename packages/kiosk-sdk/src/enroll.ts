// Enrollment: a kiosk trades its one-time code for a device credential; later it
// trades a still-valid credential for a fresh one.
import {
  EnrollDeviceRequestSchema,
  EnrollDeviceResponseSchema,
  RenewDeviceCredentialRequestSchema,
  RenewDeviceCredentialResponseSchema,
} from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { unary } from "./grpc.js";

export interface Enrollment {
  kioskId: string;
  deviceCredential: string;
}

export async function enroll(options: { authAddress: string; code: string; firmwareVersion: string; hardwareModel: string }): Promise<Enrollment> {
  const res = await unary(
    options.authAddress,
    "/adminkiosk.auth.v1.DeviceService/EnrollDevice",
    EnrollDeviceRequestSchema,
    EnrollDeviceResponseSchema,
    { code: options.code, firmwareVersion: options.firmwareVersion, hardwareModel: options.hardwareModel },
  );
  return { kioskId: res.device?.kioskId ?? "", deviceCredential: res.deviceCredential };
}

/** Exchanges a still-valid device credential for a fresh one (an expired one needs a new enrollment). */
export async function renewCredential(options: { authAddress: string; credential: string }): Promise<Enrollment> {
  const res = await unary(
    options.authAddress,
    "/adminkiosk.auth.v1.DeviceService/RenewDeviceCredential",
    RenewDeviceCredentialRequestSchema,
    RenewDeviceCredentialResponseSchema,
    {},
    { credential: options.credential },
  );
  return { kioskId: res.device?.kioskId ?? "", deviceCredential: res.deviceCredential };
}
