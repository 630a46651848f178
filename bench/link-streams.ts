// Benchmark: what holding kiosk streams costs link at 1,000 and 10,000 streams, beside
// bare node:http2, bare grpc-js and (the old baseline) bare connect-node servers in the
// same run. The same code as bench/link-scale.ts (see there), at smaller sizes.
// Run: npm run bench:link (BENCH_STREAMS="1000,10000"; loopback only; stops by itself).
process.env["BENCH_STREAMS"] ??= "1000,10000";
process.env["BENCH_CONNECT_BASELINE"] ??= "1";
process.env["BENCH_CLIENTS"] ??= "2";
process.env["BENCH_COMMAND"] ??= "npm run bench:link";
await import("./link-scale.js");
