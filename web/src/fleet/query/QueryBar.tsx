// The query bar: a text area that completes fields, operators, values and stages as one
// types (Tab or Enter takes a suggestion, arrows move, Escape closes), and runs the query
// on Enter (Shift+Enter: a new line).
import { useId, useMemo, useRef, useState } from "react";
import { accept, suggest, type Language } from "./completion";

export function QueryBar({ value, onChange, onRun, language, invalidAt }: { value: string; onChange: (v: string) => void; onRun: (v: string) => void; language?: Language; invalidAt?: number }) {
  const id = useId();
  const ref = useRef<HTMLTextAreaElement>(null);
  const [caret, setCaret] = useState(value.length);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const found = useMemo(() => (language ? suggest(language, value, caret) : { start: caret, items: [] }), [language, value, caret]);
  const showing = open && found.items.length > 0;

  const take = (i: number) => {
    const s = found.items[i];
    if (!s) return;
    const next = accept(value, caret, found.start, s);
    onChange(next.text);
    setCaret(next.caret);
    setActive(0);
    requestAnimationFrame(() => ref.current?.setSelectionRange(next.caret, next.caret));
  };

  return (
    <div className="query-bar">
      <label htmlFor={`${id}-input`} className="visually-hidden">
        Fleet query
      </label>
      <textarea
        id={`${id}-input`}
        ref={ref}
        className="query-input mono"
        rows={2}
        spellCheck={false}
        value={value}
        placeholder="group = madrid-airport and app = 2.3 and paper < 20 | sort paper | stats count() by status"
        role="combobox"
        aria-expanded={showing}
        aria-controls={`${id}-list`}
        aria-autocomplete="list"
        aria-activedescendant={showing ? `${id}-opt-${active}` : undefined}
        aria-invalid={invalidAt !== undefined}
        data-testid="query-input"
        onChange={(e) => {
          onChange(e.target.value);
          setCaret(e.target.selectionStart);
          setOpen(true);
          setActive(0);
        }}
        onSelect={(e) => setCaret(e.currentTarget.selectionStart)}
        onBlur={() => setOpen(false)}
        onKeyDown={(e) => {
          if (showing && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
            e.preventDefault();
            setActive((a) => (a + (e.key === "ArrowDown" ? 1 : found.items.length - 1)) % found.items.length);
          } else if (showing && (e.key === "Tab" || (e.key === "Enter" && !e.shiftKey))) {
            e.preventDefault();
            take(active);
          } else if (e.key === "Escape") {
            setOpen(false);
          } else if (e.key === "Enter" && !e.shiftKey) {
            e.preventDefault();
            setOpen(false);
            onRun(value);
          }
        }}
      />
      {showing && (
        <ul id={`${id}-list`} role="listbox" className="query-suggestions" data-testid="query-suggestions">
          {found.items.map((s, i) => (
            <li
              key={s.text}
              id={`${id}-opt-${i}`}
              role="option"
              aria-selected={i === active}
              className={i === active ? "query-suggestion query-suggestion-active" : "query-suggestion"}
              onMouseDown={(e) => {
                e.preventDefault();
                take(i);
              }}
            >
              <span className="mono">{s.text}</span> <span className="muted small">{s.detail}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
