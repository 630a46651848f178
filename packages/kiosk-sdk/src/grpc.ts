// The thin layer between @grpc/grpc-js and protobuf-es: a channel per address and
// (de)serialisers built from generated schemas. No .proto loading at run time.
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";

/** grpc-js wants "host:port"; accept that or an http(s):// URL (as the services print them). */
export function grpcTarget(address: string): string {
  if (!/^https?:\/\//.test(address)) return address;
  const url = new URL(address);
  return url.host;
}

export function newClient(address: string): grpc.Client {
  // One fresh channel per connection attempt (see KioskClient): the SDK's own backoff decides
  // when to retry, not the channel's reconnect timer, which can wait minutes after a long outage.
  return new grpc.Client(grpcTarget(address), grpc.credentials.createInsecure());
}

export function serializer<S extends DescMessage>(schema: S) {
  return (init: MessageInitShape<S>): Buffer => Buffer.from(toBinary(schema, create(schema, init)));
}

export function deserializer<S extends DescMessage>(schema: S) {
  return (bytes: Buffer): MessageShape<S> => fromBinary(schema, bytes);
}

export function bearerMetadata(credential: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${credential}`);
  return md;
}

/** One unary call on a short-lived channel. */
export function unary<I extends DescMessage, O extends DescMessage>(
  address: string,
  path: string,
  input: I,
  output: O,
  request: MessageInitShape<I>,
  options: { credential?: string; timeoutMs?: number } = {},
): Promise<MessageShape<O>> {
  const client = newClient(address);
  const metadata = options.credential ? bearerMetadata(options.credential) : new grpc.Metadata();
  const deadline = new Date(Date.now() + (options.timeoutMs ?? 10_000));
  return new Promise<MessageShape<O>>((resolve, reject) => {
    client.makeUnaryRequest(path, serializer(input), deserializer(output), request, metadata, { deadline }, (err, res) => {
      client.close();
      if (err) reject(readable(err));
      else if (res === undefined) reject(new Error(`${path}: empty response`));
      else resolve(res);
    });
  });
}

/**
 * The services percent-encode grpc-message (as the gRPC spec allows: "cart_skus[0]%3A …");
 * grpc-js hands it on as it came, so the SDK decodes it for the firmware.
 */
function readable(err: grpc.ServiceError): grpc.ServiceError {
  if (!err.details?.includes("%")) return err;
  try {
    const details = decodeURIComponent(err.details);
    err.message = err.message.replace(err.details, details);
    err.details = details;
  } catch {
    // Not percent-encoded after all: as it came.
  }
  return err;
}
