// The admin web's service worker: shows notifications' Web Push messages (rules with
// receivers.web_push; payload from services/notifications/src/push.ts) and opens the Alerts page
// when one is clicked. It caches nothing.
self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { title: "Admin Kiosk", body: event.data ? event.data.text() : "" };
  }
  const title = data.title || "Admin Kiosk alert";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: data.body || "",
      tag: data.ruleId ? `rule-${data.ruleId}-${data.status}` : undefined,
      renotify: Boolean(data.ruleId),
      requireInteraction: data.severity === "critical",
      data: { url: data.url || "/alerts" },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL(event.notification.data?.url || "/alerts", self.location.origin).toString();
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const open = windows.find((w) => w.url.startsWith(self.location.origin));
      if (open) return open.navigate(url).then((w) => w?.focus());
      return self.clients.openWindow(url);
    }),
  );
});
