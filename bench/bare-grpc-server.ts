// A benchmark baseline for link: the same bidi RPC (LinkService/Connect, the same
// protobuf-es codecs) on a bare @grpc/grpc-js server that only welcomes and holds each
// stream (no credential check, presence or events). Prints its port on stdout. Used by
// bench/link-streams.ts and bench/link-scale.ts beside the bare node:http2 baseline
// (bench/bare-stream-server.ts).
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ConnectRequestSchema, ConnectResponseSchema, type ConnectRequest, type ConnectResponse } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";

const server = new grpc.Server();
const welcome = create(ConnectResponseSchema, { body: { case: "welcome", value: { kioskId: "bare" } } });
server.register<ConnectRequest, ConnectResponse>(
  "/adminkiosk.link.v1.LinkService/Connect",
  (call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>) => {
    call.once("data", () => call.write(welcome));
    call.on("data", () => undefined);
    call.on("end", () => call.end());
    call.on("error", () => undefined);
  },
  (m) => Buffer.from(toBinary(ConnectResponseSchema, m)),
  (b) => fromBinary(ConnectRequestSchema, b),
  "bidi",
);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(port);
});
process.on("SIGTERM", () => process.exit(0));
