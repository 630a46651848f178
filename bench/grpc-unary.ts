// A lean gRPC unary caller for load generators: node:http2 with the 5-byte gRPC framing and
// protobuf-es, over one HTTP/2 session, no interceptors, no per-call AbortController. The
// services' side is unchanged (the same gRPC protocol any client speaks); what it saves is
// the bench's own CPU on the box the services share (connect-node's client cost ~1 ms per
// call there, about a fifth of a SendCommand's whole path: bench/RESULTS.md, issue 13).
import http2 from "node:http2";
import { create, fromBinary, toBinary, type DescMethodUnary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";

export class GrpcCallError extends Error {
  constructor(
    readonly grpcStatus: number,
    message: string,
  ) {
    super(`grpc-status ${grpcStatus}: ${message}`);
  }
}

export interface UnaryCaller {
  call<I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>, input: MessageInitShape<I>): Promise<MessageShape<O>>;
  close(): void;
}

/** Unary calls to `baseUrl` (http://host:port) over one HTTP/2 session, with `authorization` on each. */
export function grpcUnaryCaller(baseUrl: string, authorization: string): UnaryCaller {
  const session = http2.connect(baseUrl, { settings: { enablePush: false } });
  session.on("error", () => undefined);
  return {
    call(method, input) {
      const bytes = toBinary(method.input, create(method.input, input));
      const body = Buffer.allocUnsafe(5 + bytes.length);
      body[0] = 0;
      body.writeUInt32BE(bytes.length, 1);
      body.set(bytes, 5);
      return new Promise((resolve, reject) => {
        const stream = session.request({
          ":method": "POST",
          ":path": `/${method.parent.typeName}/${method.name}`,
          "content-type": "application/grpc+proto",
          te: "trailers",
          authorization,
        });
        const chunks: Buffer[] = [];
        let status: number | undefined;
        let message = "";
        const headers = (h: http2.IncomingHttpHeaders) => {
          if (h["grpc-status"] !== undefined) {
            status = Number(h["grpc-status"]);
            message = decodeURIComponent(String(h["grpc-message"] ?? ""));
          }
        };
        stream.on("response", headers);
        stream.on("trailers", headers);
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("error", reject);
        stream.on("close", () => {
          if (status === undefined) return reject(new Error(`${method.name}: the stream closed without a grpc-status (${stream.rstCode ?? "no"} RST code)`));
          if (status !== 0) return reject(new GrpcCallError(status, message));
          const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          if (all.length < 5) return reject(new Error(`${method.name}: no response message`));
          resolve(fromBinary(method.output, all.subarray(5, 5 + all.readUInt32BE(1))));
        });
        stream.end(body);
      });
    },
    close: () => session.close(),
  };
}
