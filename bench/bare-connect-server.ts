// The first benchmark baseline for link (until link moved to grpc-js): the same bidi RPC on a bare connect-node HTTP/2
// server that only holds each stream (no credential check, presence or events).
// Prints its port on stdout. bench/link-scale.ts runs it with BENCH_CONNECT_BASELINE=1.
import http2 from "node:http2";
import { create } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ConnectResponseSchema, LinkService } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";

const server = http2.createServer(
  { maxSessionMemory: 256 },
  connectNodeAdapter({
    routes: (r) =>
      r.service(LinkService, {
        async *connect(requests) {
          yield create(ConnectResponseSchema, { body: { case: "welcome", value: { kioskId: "bare" } } });
          for await (const message of requests) void message;
        },
      }),
  }),
);
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  console.log(typeof address === "object" && address ? address.port : 0);
});
process.on("SIGTERM", () => process.exit(0));
