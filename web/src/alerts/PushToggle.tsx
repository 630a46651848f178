// Web Push for this browser: registers the service worker (/sw.js), subscribes with the
// service's VAPID key (PushService.GetPushConfig) and saves the subscription with notifications
// (SavePushSubscription), so rules with "Web Push" reach this browser even when the app is
// closed. Turning it off unsubscribes and deletes the subscription.
import { useEffect, useState } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { PushService } from "@adminkiosk/proto/adminkiosk/notifications/v1/push_pb";
import { describeError } from "../api/errors";

const supported = () => typeof window !== "undefined" && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

/** The VAPID key (base64url) as the bytes PushManager.subscribe wants. */
function keyBytes(base64url: string): Uint8Array {
  const b64 = base64url.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(base64url.length / 4) * 4, "=");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

async function currentSubscription(): Promise<PushSubscription | null> {
  const registration = await navigator.serviceWorker.getRegistration("/");
  return (await registration?.pushManager.getSubscription()) ?? null;
}

export function PushToggle() {
  const config = useQuery(PushService.method.getPushConfig, {}, { enabled: supported(), retry: false });
  const save = useMutation(PushService.method.savePushSubscription);
  const remove = useMutation(PushService.method.deletePushSubscription);
  const [subscribed, setSubscribed] = useState<boolean | undefined>();
  const [problem, setProblem] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!supported()) return;
    void currentSubscription().then((s) => setSubscribed(s !== null));
  }, []);

  if (!supported()) return <span className="muted small">This browser cannot receive push notifications.</span>;
  if (config.error) {
    const notConfigured = ConnectError.from(config.error).code === Code.FailedPrecondition;
    return <span className="muted small">{notConfigured ? "Push notifications are not set up on this server." : describeError(config.error).title}</span>;
  }
  const vapidKey = config.data?.vapidPublicKey;

  const turnOn = async () => {
    if (!vapidKey) return;
    if ((await Notification.requestPermission()) !== "granted") throw new Error("Notifications are blocked for this site in the browser's settings.");
    const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    await navigator.serviceWorker.ready;
    const existing = await registration.pushManager.getSubscription();
    const subscription = existing ?? (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(vapidKey) as BufferSource }));
    const json = subscription.toJSON();
    await save.mutateAsync({ endpoint: subscription.endpoint, keys: { p256dh: json.keys?.["p256dh"] ?? "", auth: json.keys?.["auth"] ?? "" } });
    setSubscribed(true);
  };
  const turnOff = async () => {
    const subscription = await currentSubscription();
    if (subscription) {
      await remove.mutateAsync({ endpoint: subscription.endpoint });
      await subscription.unsubscribe();
    }
    setSubscribed(false);
  };
  const run = (action: () => Promise<void>) => {
    setBusy(true);
    setProblem(undefined);
    action()
      .catch((err: unknown) => setProblem(err instanceof ConnectError ? describeError(err).title : err instanceof Error ? err.message : String(err)))
      .finally(() => setBusy(false));
  };

  return (
    <span className="push-toggle">
      <button type="button" className="button button-small" disabled={busy || !vapidKey || subscribed === undefined} onClick={() => run(subscribed ? turnOff : turnOn)}>
        {subscribed ? "Turn off push on this browser" : "Get push notifications on this browser"}
      </button>
      {problem && (
        <span className="field-error small" role="alert">
          {" "}
          {problem}
        </span>
      )}
    </span>
  );
}
