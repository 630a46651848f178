// Vite for the admin web app. The dev server forwards each service's Connect path prefix
// (/adminkiosk.<service>.v1.) to that service, like `npm start`'s web server and Envoy do,
// so the app always calls its own origin. `npm run dev` (at the root) passes the running
// services as WEB_UPSTREAMS (JSON: service name → URL); alone, the default local ports.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const defaultUpstreams: Record<string, string> = {
  auth: "http://127.0.0.1:7001",
  fleet: "http://127.0.0.1:7002",
  catalog: "http://127.0.0.1:7004",
  orders: "http://127.0.0.1:7005",
  payments: "http://127.0.0.1:7006",
  ai: "http://127.0.0.1:7007",
  notifications: "http://127.0.0.1:7008",
};

const upstreams: Record<string, string> = process.env["WEB_UPSTREAMS"] ? JSON.parse(process.env["WEB_UPSTREAMS"]) : defaultUpstreams;

export default defineConfig({
  plugins: [react()],
  server: {
    host: process.env["HOST"] ?? "127.0.0.1",
    port: Number(process.env["WEB_PORT"] ?? 8080),
    strictPort: true,
    proxy: {
      ...Object.fromEntries(Object.entries(upstreams).map(([name, target]) => [`^/adminkiosk\\.${name}\\.v1\\.`, { target, xfwd: true }])),
      // Release artifacts (the Releases page's uploads): plain HTTP on fleet's port.
      ...(upstreams["fleet"] ? { "^/v1/artifacts": { target: upstreams["fleet"], xfwd: true } } : {}),
    },
  },
  build: { target: "es2022", sourcemap: true },
});
