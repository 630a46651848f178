// Errors in words a person understands, with the request id for support.
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { requestIdHeader } from "./request-id";

export interface ErrorDescription {
  /** One sentence for a person. */
  title: string;
  /** The service's own words, when they help (a field that is wrong, a rule refused). */
  detail?: string;
  requestId?: string;
  /** Field (as named in the proto) → what is wrong with it. */
  fields: Record<string, string>;
  /** True when nothing answered: the network or a service is down; retrying may help. */
  network: boolean;
}

/** A failure that never reached a service, or a service that is not reachable. */
export function isNetworkError(err: ConnectError): boolean {
  return err.code === Code.Unavailable || (err.code === Code.Unknown && err.cause instanceof TypeError);
}

function retryAfter(err: ConnectError): string {
  const seconds = Number(err.metadata.get("retry-after"));
  return Number.isFinite(seconds) && seconds > 0 ? ` Try again in ${Math.ceil(seconds)} s.` : " Wait a moment and try again.";
}

export function describeError(error: unknown): ErrorDescription {
  const err = ConnectError.from(error);
  const requestId = err.metadata.get(requestIdHeader) ?? undefined;
  const fields: Record<string, string> = {};
  for (const detail of err.findDetails(BadRequestSchema)) {
    for (const violation of detail.fieldViolations) fields[violation.field] = violation.description;
  }
  const base = { requestId, fields, network: isNetworkError(err) };
  const said = err.rawMessage || undefined;
  switch (err.code) {
    case Code.InvalidArgument:
      return { ...base, title: "Some of what was entered is not valid.", detail: said };
    case Code.NotFound:
      return { ...base, title: "That no longer exists, or never did.", detail: said };
    case Code.AlreadyExists:
      return { ...base, title: "That already exists.", detail: said };
    case Code.PermissionDenied:
      return { ...base, title: "Your role does not allow this.", detail: said };
    case Code.Unauthenticated:
      return { ...base, title: "You are not signed in, or your session has ended.", detail: said };
    case Code.FailedPrecondition:
      return { ...base, title: "This cannot be done right now.", detail: said };
    case Code.ResourceExhausted:
      return { ...base, title: `Too many attempts.${retryAfter(err)}`, detail: said };
    case Code.DeadlineExceeded:
      return { ...base, title: "The server took too long to answer. Try again." };
    case Code.Unimplemented:
      return { ...base, title: "This part of the platform is not running here yet.", detail: said };
    case Code.Aborted:
      return { ...base, title: "Someone else changed this at the same moment. Try again." };
    case Code.Canceled:
      return { ...base, title: "The request was canceled." };
    case Code.Unavailable:
      return { ...base, title: "The service cannot be reached right now. It will be retried.", detail: said };
    default:
      if (base.network) return { ...base, title: "The network connection was lost. Check your connection; it will be retried." };
      return { ...base, title: "Something went wrong on our side. If it keeps happening, tell support the request id." };
  }
}
