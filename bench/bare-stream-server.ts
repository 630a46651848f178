// A benchmark baseline for link: the same bidi RPC on a bare node:http2 server with the
// 5-byte gRPC framing written by hand and the generated protobuf-es codecs: it welcomes
// each stream after its first message and holds it (no credential check, presence or
// events, no RPC framework). Prints its port on stdout. Used by bench/link-streams.ts
// and bench/link-scale.ts beside the bare grpc-js baseline (bench/bare-grpc-server.ts).
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { ConnectResponseSchema } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";

const bytes = toBinary(ConnectResponseSchema, create(ConnectResponseSchema, { body: { case: "welcome", value: { kioskId: "bare" } } }));
const welcome = Buffer.alloc(5 + bytes.length);
welcome.writeUInt32BE(bytes.length, 1);
welcome.set(bytes, 5);

const server = http2.createServer({ maxSessionMemory: 256 });
server.on("stream", (stream) => {
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  let welcomed = false;
  stream.on("data", () => {
    if (welcomed) return;
    welcomed = true;
    stream.write(welcome);
  });
  stream.on("end", () => stream.end());
  stream.on("error", () => undefined);
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  console.log(typeof address === "object" && address ? address.port : 0);
});
process.on("SIGTERM", () => process.exit(0));
