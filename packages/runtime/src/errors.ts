// Domain errors, mapped at the edge. Domain modules (store, rules, sale, intents…) throw
// a DomainError saying what kind of refusal it is; they never build a ConnectError.
// The runtime's outermost interceptor (observe.ts) turns it into the Connect error the
// client sees: the code for its kind, the message, a google.rpc.BadRequest detail for
// field violations and a google.rpc.ErrorInfo detail for a reason a program can switch on.
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";

/** What went wrong, in the domain's words. Each kind has one Connect code (`kindCodes`). */
export type DomainErrorKind =
  | "invalid"
  | "notFound"
  | "alreadyExists"
  | "failedPrecondition"
  | "exhausted"
  | "permissionDenied"
  | "outOfRange"
  | "aborted"
  | "unavailable";

export const kindCodes: Record<DomainErrorKind, Code> = {
  invalid: Code.InvalidArgument,
  notFound: Code.NotFound,
  alreadyExists: Code.AlreadyExists,
  failedPrecondition: Code.FailedPrecondition,
  exhausted: Code.ResourceExhausted,
  permissionDenied: Code.PermissionDenied,
  outOfRange: Code.OutOfRange,
  aborted: Code.Aborted,
  unavailable: Code.Unavailable,
};

const kindsByCode = new Map(Object.entries(kindCodes).map(([kind, code]) => [code, kind as DomainErrorKind]));

export const isDomainErrorKind = (value: unknown): value is DomainErrorKind => typeof value === "string" && Object.hasOwn(kindCodes, value);

/** The name of a kind's code ("ResourceExhausted"), for records that name a refusal without a reason. */
export const kindCodeName = (kind: DomainErrorKind): string => Code[kindCodes[kind]];

/** The kind a Connect code stands for (an upstream service's refusal); undefined for Internal, Unknown, deadlines… */
export const kindOfCode = (code: Code): DomainErrorKind | undefined => kindsByCode.get(code);

export interface FieldViolation {
  field: string;
  description: string;
}

/** A `google.rpc.ErrorInfo`: a reason a program can switch on, in the service's domain. */
export interface ErrorReason {
  reason: string;
  domain: string;
  metadata?: Record<string, string>;
}

export interface DomainErrorOptions {
  violations?: FieldViolation[];
  info?: ErrorReason;
  cause?: unknown;
}

export class DomainError extends Error {
  override readonly name = "DomainError";
  readonly violations: FieldViolation[];
  readonly info: ErrorReason | undefined;

  constructor(
    readonly kind: DomainErrorKind,
    message: string,
    options: DomainErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.violations = options.violations ?? [];
    this.info = options.info;
  }
}

/** Bad input, naming the field as the proto does ("items[0].quantity: must be …"). */
export const invalid = (field: string, description: string, info?: ErrorReason) =>
  new DomainError("invalid", `${field}: ${description}`, { violations: [{ field, description }], info });
export const notFound = (message: string, info?: ErrorReason) => new DomainError("notFound", message, { info });
export const alreadyExists = (message: string, info?: ErrorReason) => new DomainError("alreadyExists", message, { info });
export const failedPrecondition = (message: string, info?: ErrorReason) => new DomainError("failedPrecondition", message, { info });
export const exhausted = (message: string, info?: ErrorReason) => new DomainError("exhausted", message, { info });
export const permissionDenied = (message: string, info?: ErrorReason) => new DomainError("permissionDenied", message, { info });
export const outOfRange = (message: string, info?: ErrorReason) => new DomainError("outOfRange", message, { info });
/** A conflict with a concurrent change: the caller retries (reloading first). */
export const aborted = (message: string) => new DomainError("aborted", message);
/** Something the domain depends on cannot answer now: the caller retries later. */
export const unavailable = (message: string, cause?: unknown) => new DomainError("unavailable", message, { cause });

/** The Connect error a client sees for a domain error. */
export function domainErrorToConnect(err: DomainError): ConnectError {
  const details = [];
  if (err.violations.length > 0) details.push({ desc: BadRequestSchema, value: { fieldViolations: err.violations } });
  if (err.info) details.push({ desc: ErrorInfoSchema, value: { reason: err.info.reason, domain: err.info.domain, metadata: err.info.metadata ?? {} } });
  return new ConnectError(err.message, kindCodes[err.kind], undefined, details, err.cause ?? err);
}

/**
 * A refusal as plain data, whichever side made it: a DomainError thrown here or a
 * ConnectError an upstream service answered. Undefined for anything else (a bug, a
 * lost connection, a deadline): those are not refusals of the request.
 */
export interface Refusal {
  kind: DomainErrorKind;
  message: string;
  violations: FieldViolation[];
  info?: ErrorReason;
}

export function refusalOf(err: unknown): Refusal | undefined {
  if (err instanceof DomainError) return { kind: err.kind, message: err.message, violations: err.violations, ...(err.info ? { info: err.info } : {}) };
  if (!(err instanceof ConnectError)) return undefined;
  const kind = kindOfCode(err.code);
  if (!kind) return undefined;
  const violations = err.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
  const info = err.findDetails(ErrorInfoSchema)[0];
  return { kind, message: err.rawMessage, violations, ...(info ? { info: { reason: info.reason, domain: info.domain, metadata: { ...info.metadata } } } : {}) };
}

/** The refusal again, as the DomainError it was (or that an upstream refusal amounts to). */
export const fromRefusal = (r: Refusal): DomainError => new DomainError(r.kind, r.message, { violations: r.violations, info: r.info });
