// Catalog and inventory: products (search; admins create and edit them), stock per kiosk with
// low stock highlighted and a Restock form (operators and admins), and events (admins create
// them with their seat maps and edit their details, and their seat maps while no seat is sold
// or held) with the seat map coloured by availability.
import { useId, useState } from "react";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { EventService, InventoryService, ProductService, SeatState, type Product, type SeatStatus, type StockLevel } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { useCan } from "../api/context";
import { describeError } from "../api/errors";
import { EmptyState, ErrorNotice, Loading, SkeletonRows } from "../ui/feedback";
import { FormField } from "../ui/form";
import { formatAgo, formatDateTime, formatMoney, formatNumber } from "../ui/format";
import { Pager, usePageTokens } from "../ui/pager";
import { useDebounced } from "../ui/use-debounced";
import { EventEditor } from "./EventEditor";
import { ProductEditor } from "./ProductEditor";

const pageSize = 25;

export function CatalogPage() {
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <h1>Catalog and inventory</h1>
          <p className="page-lede">Products and prices, what each kiosk has in stock, and the seats of events.</p>
        </div>
      </header>
      <ProductList />
      <StockList />
      <SeatMapSection />
    </div>
  );
}

function ProductList() {
  const id = useId();
  const [query, setQuery] = useState("");
  const q = useDebounced(query.trim());
  const pages = usePageTokens(q);
  const canCreate = useCan(ProductService.method.createProduct);
  const canEdit = useCan(ProductService.method.updateProduct);
  // Admins see inactive products too, to edit them.
  const products = useQuery(ProductService.method.listProducts, { pageSize, pageToken: pages.token, query: q, includeInactive: canEdit });
  const list = products.data?.products ?? [];
  const [editing, setEditing] = useState<Product | "new">();
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Products
        </h2>
        <div className="field">
          <label htmlFor={`${id}-q`} className="visually-hidden">
            Search products
          </label>
          <input id={`${id}-q`} type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="Search name or SKU" />
        </div>
        {canCreate && !editing && (
          <button type="button" className="button button-small" onClick={() => setEditing("new")}>
            New product
          </button>
        )}
      </div>
      {editing && <ProductEditor key={editing === "new" ? "new" : editing.sku} product={editing === "new" ? undefined : editing} onDone={() => setEditing(undefined)} />}
      {products.error && <ErrorNotice error={products.error} onRetry={() => void products.refetch()} compact />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">SKU</th>
              <th scope="col">Name</th>
              <th scope="col">Category</th>
              <th scope="col">Price</th>
              <th scope="col">Tax</th>
              {canEdit && <th scope="col"><span className="visually-hidden">Actions</span></th>}
            </tr>
          </thead>
          <tbody>
            {products.isPending && <SkeletonRows rows={5} columns={5} />}
            {list.map((p) => (
              <tr key={p.sku} data-testid="product-row">
                <td className="mono">{p.sku}</td>
                <td>
                  {p.name}
                  {!p.active && <span className="badge badge-neutral"> inactive</span>}
                  {p.description && <div className="muted small">{p.description}</div>}
                </td>
                <td>{p.category || "—"}</td>
                <td className="nowrap">{formatMoney(p.priceMinor, p.currency)}</td>
                <td className="nowrap">{(p.taxRateBasisPoints / 100).toFixed(2)} %</td>
                {canEdit && (
                  <td>
                    <button type="button" className="button button-small button-quiet" onClick={() => setEditing(p)} aria-label={`Edit ${p.name}`}>
                      Edit
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
        {!products.isPending && list.length === 0 && !products.error && (
          <EmptyState icon="catalog" title={q ? "No product matches" : "No products yet"}>
            <p>{q ? "Try another name or SKU." : "Products are created by admins through ProductService."}</p>
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={products.data?.nextPageToken} shown={list.length} pageSize={pageSize} total={products.data?.totalSize} noun="products" />
    </section>
  );
}

function StockList() {
  const id = useId();
  const canRestock = useCan(InventoryService.method.restock);
  const [kiosk, setKiosk] = useState("");
  const [lowOnly, setLowOnly] = useState(false);
  const [restocking, setRestocking] = useState<StockLevel | null>(null);
  const kioskId = useDebounced(kiosk.trim());
  const pages = usePageTokens(kioskId, lowOnly);
  const stock = useQuery(InventoryService.method.listStock, { pageSize: 50, pageToken: pages.token, kioskId, lowOnly });
  const list = stock.data?.stock ?? [];
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Stock per kiosk
        </h2>
        <div className="filters">
          <div className="field">
            <label htmlFor={`${id}-kiosk`} className="visually-hidden">
              Kiosk
            </label>
            <input id={`${id}-kiosk`} value={kiosk} onChange={(e) => setKiosk(e.target.value)} placeholder="Kiosk id (all kiosks)" />
          </div>
          <label className="checkbox">
            <input type="checkbox" checked={lowOnly} onChange={(e) => setLowOnly(e.target.checked)} /> Low stock only
          </label>
        </div>
      </div>
      {stock.error && <ErrorNotice error={stock.error} onRetry={() => void stock.refetch()} compact />}
      {restocking && canRestock && <RestockForm level={restocking} onDone={() => setRestocking(null)} />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Kiosk</th>
              <th scope="col">SKU</th>
              <th scope="col">On hand</th>
              <th scope="col">Reserved</th>
              <th scope="col">Available</th>
              <th scope="col">Low below</th>
              <th scope="col">Updated</th>
              {canRestock && <th scope="col"><span className="visually-hidden">Actions</span></th>}
            </tr>
          </thead>
          <tbody>
            {stock.isPending && <SkeletonRows rows={5} columns={canRestock ? 8 : 7} />}
            {list.map((s) => (
              <tr key={`${s.kioskId}/${s.sku}`} className={s.low ? "row-low" : undefined} data-testid="stock-row" data-kiosk={s.kioskId} data-sku={s.sku}>
                <td className="mono">{s.kioskId}</td>
                <td className="mono">{s.sku}</td>
                <td data-testid="on-hand">{formatNumber(s.onHand)}</td>
                <td>{formatNumber(s.reserved)}</td>
                <td>
                  {formatNumber(s.available)} {s.low && <span className="badge badge-warn">Low</span>}
                </td>
                <td>{formatNumber(s.lowStockThreshold)}</td>
                <td className="nowrap" title={formatDateTime(s.updateTime)}>
                  {formatAgo(s.updateTime)}
                </td>
                {canRestock && (
                  <td>
                    <button type="button" className="button button-small" onClick={() => setRestocking(s)} aria-label={`Restock ${s.sku} at ${s.kioskId}`}>
                      Restock
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
        {!stock.isPending && list.length === 0 && !stock.error && (
          <EmptyState icon="catalog" title={lowOnly ? "Nothing is low on stock" : "No stock recorded"}>
            <p>{lowOnly ? "Every product at these kiosks is above its low-stock threshold." : "Stock appears once a kiosk is restocked."}</p>
          </EmptyState>
        )}
      </div>
      <Pager pages={pages} nextToken={stock.data?.nextPageToken} shown={list.length} pageSize={50} total={stock.data?.totalSize} noun="stock levels" />
    </section>
  );
}

function RestockForm({ level, onDone }: { level: StockLevel; onDone: () => void }) {
  const id = useId();
  const queryClient = useQueryClient();
  const [quantity, setQuantity] = useState("10");
  const [reason, setReason] = useState("");
  const restock = useMutation(InventoryService.method.restock, {
    onSuccess: async () => {
      await queryClient.invalidateQueries();
      onDone();
    },
  });
  const [notWhole, setNotWhole] = useState(false);
  const fields = restock.error ? describeError(restock.error).fields : {};
  const quantityError = notWhole ? "Enter a whole number of units." : fields["quantity"];
  return (
    <form
      className="form"
      aria-label="Restock"
      onSubmit={(e) => {
        e.preventDefault();
        const whole = /^-?\d+$/.test(quantity.trim());
        setNotWhole(!whole);
        if (!whole) return;
        restock.mutate({ kioskId: level.kioskId, sku: level.sku, quantity: BigInt(quantity.trim()), reason: reason.trim() });
      }}
    >
      <p>
        Restock <strong className="mono">{level.sku}</strong> at <strong className="mono">{level.kioskId}</strong> (on hand now: {formatNumber(level.onHand)}).
      </p>
      <div className="filters">
        <FormField id={`${id}-qty`} label="Quantity added" hint="Units put into the kiosk" error={quantityError}>
          <input id={`${id}-qty`} inputMode="numeric" value={quantity} onChange={(e) => setQuantity(e.target.value)} required />
        </FormField>
        <FormField id={`${id}-reason`} label="Reason" hint="e.g. weekly refill" error={fields["reason"]}>
          <input id={`${id}-reason`} value={reason} onChange={(e) => setReason(e.target.value)} />
        </FormField>
      </div>
      {restock.error && Object.keys(fields).length === 0 && <ErrorNotice error={restock.error} compact />}
      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={restock.isPending}>
          {restock.isPending ? "Restocking…" : "Restock"}
        </button>
        <button type="button" className="button button-quiet" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

const seatClass: Record<SeatState, string> = {
  [SeatState.UNSPECIFIED]: "seat seat-unknown",
  [SeatState.AVAILABLE]: "seat seat-available",
  [SeatState.HELD]: "seat seat-held",
  [SeatState.SOLD]: "seat seat-sold",
};
const seatWord: Record<SeatState, string> = {
  [SeatState.UNSPECIFIED]: "unknown",
  [SeatState.AVAILABLE]: "available",
  [SeatState.HELD]: "held",
  [SeatState.SOLD]: "sold",
};

function SeatMapSection() {
  const id = useId();
  const canCreate = useCan(EventService.method.createEvent);
  const canEdit = useCan(EventService.method.updateEvent);
  const events = useQuery(EventService.method.listEvents, { pageSize: 50, includeInactive: canEdit });
  const list = events.data?.events ?? [];
  const [chosen, setChosen] = useState("");
  const [editing, setEditing] = useState<"new" | "edit">();
  const eventId = chosen || list[0]?.eventId || "";
  // ListEvents leaves the seat maps out: the chosen event's comes from GetEvent.
  const full = useQuery(EventService.method.getEvent, { eventId }, { enabled: eventId !== "" });
  const event = full.data?.event?.eventId === eventId ? full.data.event : undefined;
  const seats = useQuery(EventService.method.getSeatAvailability, { eventId }, { enabled: eventId !== "", refetchInterval: 15_000 });
  const bySeat = new Map<string, SeatStatus>();
  for (const s of seats.data?.seats ?? []) bySeat.set(s.seatId, s);
  // What stops a seat map edit: the first seat sold or held (catalog checks again, under lock).
  const taken = seats.data?.seats.find((s) => s.state === SeatState.SOLD || s.state === SeatState.HELD);
  const blocked = !seats.data ? "seat availability is still loading" : taken ? `seat ${taken.seatId} is ${seatWord[taken.state]}` : undefined;
  const counts = { available: 0, held: 0, sold: 0 };
  for (const t of seats.data?.tiers ?? []) {
    counts.available += t.available;
    counts.held += t.held;
    counts.sold += t.sold;
  }
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <div className="card-toolbar">
        <h2 id={`${id}-title`} className="card-title">
          Events and seat maps
        </h2>
        {canCreate && !editing && (
          <button type="button" className="button button-small" onClick={() => setEditing("new")}>
            New event
          </button>
        )}
        {canEdit && event && !editing && (
          <button type="button" className="button button-small button-quiet" onClick={() => setEditing("edit")}>
            Edit event
          </button>
        )}
        {list.length > 0 && (
          <div className="field">
            <label htmlFor={`${id}-event`} className="visually-hidden">
              Event
            </label>
            <select id={`${id}-event`} value={eventId} onChange={(e) => setChosen(e.target.value)}>
              {list.map((e) => (
                <option key={e.eventId} value={e.eventId}>
                  {e.name} — {formatDateTime(e.startTime)}
                  {e.active ? "" : " (not on sale)"}
                </option>
              ))}
            </select>
          </div>
        )}
      </div>
      {editing && (
        <EventEditor
          key={editing === "new" ? "new" : eventId}
          event={editing === "edit" ? event : undefined}
          blocked={blocked}
          onDone={(saved) => {
            if (saved) setChosen(saved);
            setEditing(undefined);
          }}
        />
      )}
      {events.error && <ErrorNotice error={events.error} onRetry={() => void events.refetch()} compact />}
      {full.error && <ErrorNotice error={full.error} onRetry={() => void full.refetch()} compact />}
      {seats.error && <ErrorNotice error={seats.error} onRetry={() => void seats.refetch()} compact />}
      {events.isPending && <Loading label="Loading events" />}
      {!events.isPending && list.length === 0 && !events.error && (
        <EmptyState icon="catalog" title="No upcoming events">
          <p>{canCreate ? "Create one with its seat map: New event." : "Admins create events with their seat maps here."}</p>
        </EmptyState>
      )}
      {event && (
        <>
          <p className="muted" data-testid="event-summary">
            {event.venue} · {formatDateTime(event.startTime)} · {event.seatCount} seats: {counts.available} available, {counts.held} held, {counts.sold} sold
            {event.priceTiers.map((t) => ` · ${t.name} ${formatMoney(t.priceMinor, t.currency)}`).join("")}
            {!event.active && " · not on sale"}
          </p>
          <div className="legend">
            <span className="legend-item"><span className="seat seat-available" /> Available</span>
            <span className="legend-item"><span className="seat seat-held" /> Held</span>
            <span className="legend-item"><span className="seat seat-sold" /> Sold</span>
          </div>
          <div className="seat-map" data-testid="seat-map">
            {event.sections.map((section) => (
              <div key={section.sectionId} className="seat-section">
                <h3>{section.name || section.sectionId}</h3>
                {section.rows.map((row) => (
                  <div key={row.rowId} className="seat-row">
                    <span className="seat-row-label">{row.rowId}</span>
                    {row.seats.map((place) => {
                      const state = bySeat.get(place.seatId)?.state ?? SeatState.UNSPECIFIED;
                      return <span key={place.seatId} className={seatClass[state]} title={`${section.name} row ${row.rowId} seat ${place.number}: ${seatWord[state]}`} data-state={seatWord[state]} />;
                    })}
                  </div>
                ))}
              </div>
            ))}
          </div>
        </>
      )}
    </section>
  );
}
