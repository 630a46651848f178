// Events and their seat maps (admins create and edit; everyone reads): the event's details,
// its price tiers, and a seat map built from sections of rows × seats, each section in one tier,
// previewed as it will be sold. An existing event's details change with UpdateEvent; its tiers
// and seat map change with UpdateEventSeatMap, with the same builder, only while no seat is
// sold, held or leased (`blocked` says which seat stops it; catalog refuses it too).
import { useId, useState } from "react";
import { useMutation } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { EventService, type Event, type Section } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { describeError } from "../api/errors";
import { ErrorNotice } from "../ui/feedback";
import { FormField } from "../ui/form";
import { currencyDigits, fromMinor, toMinor } from "./ProductEditor";

interface TierDraft {
  tierId: string;
  name: string;
  price: string;
}
interface SectionDraft {
  sectionId: string;
  name: string;
  rows: string;
  seatsPerRow: string;
  tierId: string;
}

/** Row ids A, B, … Z, AA, AB … */
export function rowName(i: number): string {
  let s = "";
  for (let n = i + 1; n > 0; n = Math.floor((n - 1) / 26)) s = String.fromCharCode(65 + ((n - 1) % 26)) + s;
  return s;
}

/** The sections the drafts describe: rows A, B, … of seats 1..n, every seat in its section's tier. */
export function buildSections(drafts: SectionDraft[]): Omit<Section, "$typeName">[] {
  return drafts.map((d) => ({
    sectionId: d.sectionId.trim(),
    name: d.name.trim(),
    rows: Array.from({ length: Math.min(200, Math.max(0, Number(d.rows) || 0)) }, (_, r) => ({
      $typeName: "adminkiosk.catalog.v1.SeatRow" as const,
      rowId: rowName(r),
      seats: Array.from({ length: Math.min(500, Math.max(0, Number(d.seatsPerRow) || 0)) }, (_, n) => ({ $typeName: "adminkiosk.catalog.v1.SeatPlace" as const, number: String(n + 1), tierId: d.tierId, seatId: "" })),
    })),
  }));
}

const localInput = (ms: number) => {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
};

/** The builder's drafts for an existing map: each section's row count, its longest row and its first seat's tier. */
function sectionDrafts(event: Event): SectionDraft[] {
  return event.sections.map((s) => ({
    sectionId: s.sectionId,
    name: s.name,
    rows: String(s.rows.length),
    seatsPerRow: String(Math.max(0, ...s.rows.map((r) => r.seats.length))),
    tierId: s.rows[0]?.seats[0]?.tierId ?? event.priceTiers[0]?.tierId ?? "",
  }));
}

/**
 * A new event with its seat map, or an existing event's details (and its tiers and seat map
 * when the operator asks to change them and `blocked` does not say why they cannot).
 */
export function EventEditor({ event, blocked, onDone }: { event?: Event; blocked?: string; onDone: (eventId?: string) => void }) {
  const id = useId();
  const queryClient = useQueryClient();
  const tomorrow = Date.now() + 86_400_000;
  const [form, setForm] = useState({
    name: event?.name ?? "",
    venue: event?.venue ?? "",
    latitude: event?.venueLatitude === undefined ? "" : String(event.venueLatitude),
    longitude: event?.venueLongitude === undefined ? "" : String(event.venueLongitude),
    description: event?.description ?? "",
    start: localInput(event?.startTime ? timestampDate(event.startTime).getTime() : tomorrow - (tomorrow % 3_600_000)),
    active: event?.active ?? true,
    currency: event?.priceTiers[0]?.currency ?? "EUR",
  });
  const [tiers, setTiers] = useState<TierDraft[]>(event ? event.priceTiers.map((t) => ({ tierId: t.tierId, name: t.name, price: fromMinor(t.priceMinor, t.currency) })) : [{ tierId: "standard", name: "Standard", price: "" }]);
  const [sections, setSections] = useState<SectionDraft[]>(event ? sectionDrafts(event) : [{ sectionId: "main", name: "Main hall", rows: "4", seatsPerRow: "10", tierId: "standard" }]);
  // An existing event's map is edited only when asked for (and only while nothing blocks it).
  const [editMap, setEditMap] = useState(false);
  const withMap = !event || (editMap && !blocked);
  const onSuccess = (res: { event?: Event }) => {
    void queryClient.invalidateQueries();
    onDone(res.event?.eventId);
  };
  const create = useMutation(EventService.method.createEvent, { onSuccess });
  const update = useMutation(EventService.method.updateEvent);
  const updateMap = useMutation(EventService.method.updateEventSeatMap);
  const save = event ? { error: updateMap.error ?? update.error, isPending: update.isPending || updateMap.isPending } : create;
  const said: Record<string, string> = {};
  for (const [k, v] of Object.entries(save.error ? describeError(save.error).fields : {})) said[k.replace(/^event\./, "")] = v;
  const startMs = new Date(form.start).getTime();
  const built = buildSections(sections);
  const seatCount = built.reduce((n, s) => n + s.rows.reduce((m, r) => m + r.seats.length, 0), 0);
  const priceErrors = tiers.map((t) => (t.price !== "" && toMinor(t.price, form.currency) === undefined ? `At most ${currencyDigits(form.currency)} decimals` : undefined));
  // The venue's place, optional (both or neither; catalog names a missing or out-of-range one): rollouts keep installs away from kiosks nearby during the event.
  const coordinate = (v: string) => (v.trim() === "" ? undefined : Number(v));
  const place = { venueLatitude: coordinate(form.latitude), venueLongitude: coordinate(form.longitude) };
  const hadPlace = event?.venueLatitude !== undefined;
  const set = (k: "name" | "venue" | "latitude" | "longitude" | "description" | "start" | "currency") => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });

  return (
    <form
      className="form card-inset"
      aria-label={event ? `Edit ${event.name}` : "New event"}
      data-testid="event-editor"
      onSubmit={(e) => {
        e.preventDefault();
        if (Number.isNaN(startMs) || priceErrors.some(Boolean)) return;
        const details = { name: form.name.trim(), venue: form.venue.trim(), description: form.description.trim(), startTime: timestampFromMs(startMs), active: form.active };
        const priceTiers = tiers.map((t) => ({ tierId: t.tierId.trim(), name: t.name.trim(), priceMinor: toMinor(t.price, form.currency) ?? 0n, currency: form.currency.trim().toUpperCase() }));
        if (event) {
          updateMap.reset();
          update.reset();
          // The map first: it is the part catalog may refuse (a seat sold meanwhile), and then nothing is saved.
          void (async () => {
            if (withMap) await updateMap.mutateAsync({ eventId: event.eventId, priceTiers, sections: built });
            const noPlace = place.venueLatitude === undefined && place.venueLongitude === undefined;
            onSuccess(await update.mutateAsync({ eventId: event.eventId, ...details, ...(noPlace ? { clearVenueLocation: hadPlace } : place) }));
          })().catch(() => undefined);
          return;
        }
        create.mutate({ event: { ...details, ...place, priceTiers, sections: built } });
      }}
    >
      <div className="form-columns">
        <FormField id={`${id}-name`} label="Event" error={said["name"]}>
          <input id={`${id}-name`} value={form.name} onChange={set("name")} required maxLength={200} />
        </FormField>
        <FormField id={`${id}-venue`} label="Venue" error={said["venue"]}>
          <input id={`${id}-venue`} value={form.venue} onChange={set("venue")} required maxLength={200} />
        </FormField>
        <FormField id={`${id}-latitude`} label="Latitude" hint="Of the venue; optional, with the longitude: rollouts avoid kiosks nearby during the event" error={said["venue_latitude"]}>
          <input id={`${id}-latitude`} type="number" step="any" min={-90} max={90} value={form.latitude} onChange={set("latitude")} />
        </FormField>
        <FormField id={`${id}-longitude`} label="Longitude" error={said["venue_longitude"]}>
          <input id={`${id}-longitude`} type="number" step="any" min={-180} max={180} value={form.longitude} onChange={set("longitude")} />
        </FormField>
        <FormField id={`${id}-start`} label="Starts" hint="Your local time" error={said["start_time"]}>
          <input id={`${id}-start`} type="datetime-local" value={form.start} onChange={set("start")} required />
        </FormField>
        <FormField id={`${id}-description`} label="Description" error={said["description"]}>
          <input id={`${id}-description`} value={form.description} onChange={set("description")} maxLength={2000} />
        </FormField>
        <label className="checkbox">
          <input type="checkbox" checked={form.active} onChange={(e) => setForm({ ...form, active: e.target.checked })} /> On sale (active)
        </label>
      </div>
      {event && blocked && (
        <p className="notice notice-warn notice-compact" data-testid="seat-map-locked">
          The seat map cannot change: {blocked}. It can change only while no seat is sold, held or leased.
        </p>
      )}
      {event && !blocked && (
        <label className="checkbox">
          <input type="checkbox" checked={editMap} onChange={(e) => setEditMap(e.target.checked)} /> Change the price tiers and seat map
        </label>
      )}
      {withMap && (
        <>
          <fieldset className="fieldset">
            <legend>Price tiers</legend>
            <FormField id={`${id}-currency`} label="Currency" hint="One for the whole event" error={said["price_tiers[0].currency"]}>
              <input id={`${id}-currency`} value={form.currency} onChange={set("currency")} maxLength={3} required />
            </FormField>
            {tiers.map((t, i) => (
              <div key={i} className="form-columns form-row" data-testid="tier-draft">
                <FormField id={`${id}-tier-${i}-id`} label="Tier id" error={said[`price_tiers[${i}].tier_id`]}>
                  <input
                    id={`${id}-tier-${i}-id`}
                    value={t.tierId}
                    onChange={(e) => {
                      // Sections in this tier follow its new id.
                      setSections(sections.map((s) => (s.tierId === t.tierId ? { ...s, tierId: e.target.value } : s)));
                      setTiers(tiers.map((x, j) => (j === i ? { ...x, tierId: e.target.value } : x)));
                    }}
                    required
                    maxLength={32}
                  />
                </FormField>
                <FormField id={`${id}-tier-${i}-name`} label="Tier name" error={said[`price_tiers[${i}].name`]}>
                  <input id={`${id}-tier-${i}-name`} value={t.name} onChange={(e) => setTiers(tiers.map((x, j) => (j === i ? { ...x, name: e.target.value } : x)))} required maxLength={100} />
                </FormField>
                <FormField id={`${id}-tier-${i}-price`} label="Seat price" error={priceErrors[i] ?? said[`price_tiers[${i}].price_minor`]}>
                  <input id={`${id}-tier-${i}-price`} value={t.price} onChange={(e) => setTiers(tiers.map((x, j) => (j === i ? { ...x, price: e.target.value } : x)))} required inputMode="decimal" />
                </FormField>
              </div>
            ))}
            <button type="button" className="button button-small button-quiet" onClick={() => setTiers([...tiers, { tierId: `tier${tiers.length + 1}`, name: "", price: "" }])} disabled={tiers.length >= 20}>
              Add a tier
            </button>
          </fieldset>
          <fieldset className="fieldset">
            <legend>Seat map</legend>
            {sections.map((s, i) => {
              const change = (k: keyof SectionDraft) => (e: { target: { value: string } }) => setSections(sections.map((x, j) => (j === i ? { ...x, [k]: e.target.value } : x)));
              const f = `sections[${i}]`;
              return (
                <div key={i} className="form-columns form-row" data-testid="section-draft">
                  <FormField id={`${id}-s${i}-id`} label="Section id" error={said[`${f}.section_id`]}>
                    <input id={`${id}-s${i}-id`} value={s.sectionId} onChange={change("sectionId")} required maxLength={16} />
                  </FormField>
                  <FormField id={`${id}-s${i}-name`} label="Section name" error={said[`${f}.name`]}>
                    <input id={`${id}-s${i}-name`} value={s.name} onChange={change("name")} required maxLength={100} />
                  </FormField>
                  <FormField id={`${id}-s${i}-rows`} label="Rows" hint="A, B, C …" error={said[`${f}.rows`]}>
                    <input id={`${id}-s${i}-rows`} type="number" min={1} max={200} value={s.rows} onChange={change("rows")} required />
                  </FormField>
                  <FormField id={`${id}-s${i}-seats`} label="Seats per row" error={said[`${f}.rows[0].seats`]}>
                    <input id={`${id}-s${i}-seats`} type="number" min={1} max={500} value={s.seatsPerRow} onChange={change("seatsPerRow")} required />
                  </FormField>
                  <FormField id={`${id}-s${i}-tier`} label="Tier">
                    <select id={`${id}-s${i}-tier`} value={s.tierId} onChange={change("tierId")}>
                      {tiers.map((t) => (
                        <option key={t.tierId} value={t.tierId}>
                          {t.name || t.tierId}
                        </option>
                      ))}
                    </select>
                  </FormField>
                </div>
              );
            })}
            <button type="button" className="button button-small button-quiet" onClick={() => setSections([...sections, { sectionId: `s${sections.length + 1}`, name: "", rows: "2", seatsPerRow: "10", tierId: tiers[0]?.tierId ?? "" }])} disabled={sections.length >= 50}>
              Add a section
            </button>
            <p className="muted small" data-testid="seat-count">
              {seatCount} seats{seatCount > 20_000 ? " — at most 20,000" : ""}
            </p>
            <div className="seat-map" aria-label="Preview of the seat map" data-testid="seat-map-preview">
              {built.map((section, i) => (
                <div key={i} className="seat-section">
                  <h3>{section.name || section.sectionId}</h3>
                  {section.rows.slice(0, 30).map((row) => (
                    <div key={row.rowId} className="seat-row">
                      <span className="seat-row-label">{row.rowId}</span>
                      {row.seats.slice(0, 60).map((place) => (
                        <span key={place.number} className="seat seat-available" title={`${section.name} row ${row.rowId} seat ${place.number}`} />
                      ))}
                    </div>
                  ))}
                </div>
              ))}
            </div>
          </fieldset>
        </>
      )}
      {save.error && <ErrorNotice error={save.error} compact />}
      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={save.isPending || seatCount > 20_000}>
          {save.isPending ? "Saving…" : event ? (withMap ? "Save event and seat map" : "Save event") : "Create event"}
        </button>
        <button type="button" className="button button-quiet" onClick={() => onDone()}>
          Cancel
        </button>
      </div>
    </form>
  );
}
