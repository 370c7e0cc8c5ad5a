// Client-side checks of form fields, shared by every wizard. The checks read a value as typed and
// return a result; `record` turns a failed one into a FormError at a path (the field's, or where
// the value goes in the document) with the field's label first.

/** A form field the user must fix; shaped like the frame's Finding (kind "form"). */
export interface FormError {
  level: 'error';
  kind: 'form';
  path: string;
  message: string;
  code: string;
}

export function formError(path: string, message: string, code = 'form'): FormError {
  return { level: 'error', kind: 'form', path, message, code };
}

/**
 * A checked value: `value` is undefined when the field is empty (and not required). A failure
 * keeps the number it read, when there was one, so a preview can still show what was typed.
 */
export type Checked<T> = { ok: true; value: T | undefined } | { ok: false; message: string; code: string; value?: T };

/** Records a failed check as a FormError at `path` ("<label> <message>"); returns the value read. */
export function record<T>(errors: FormError[], path: string, label: string, result: Checked<T>): T | undefined {
  if (!result.ok) errors.push(formError(path, `${label} ${result.message}`, result.code));
  return result.value;
}

/** Drops undefined values so documents (and their YAML) hold only what is set; `{}` stays (it can mean something: `outlierDetection: {}`). */
export function compact<T extends Record<string, unknown>>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

export const INT32_MAX = 2147483647;
export const UINT32_MAX = 4294967295;

interface Required {
  /** Empty is an error (default: empty means "not set"). */
  required?: boolean;
}

/** A whole number within [min, max], as typed; `why` explains the minimum. */
export function checkInt(raw: string, opts: Required & { min: number; max: number; why?: string }): Checked<number> {
  const s = raw.trim();
  if (s === '') return opts.required ? { ok: false, message: `is required: a whole number from ${opts.min} to ${opts.max}`, code: 'required' } : { ok: true, value: undefined };
  if (!/^[+-]?\d+$/.test(s)) return { ok: false, message: `must be a whole number (got ${JSON.stringify(raw)})`, code: 'integer' };
  const n = Number(s);
  if (n < opts.min) return { ok: false, message: `must be at least ${opts.min} (got ${n})${opts.why ? `: ${opts.why}` : ''}`, code: 'range', value: n };
  if (n > opts.max) return { ok: false, message: `must be at most ${opts.max} (got ${n})`, code: 'range', value: n };
  return { ok: true, value: n };
}

/** A percentage from 0 to 100: a whole number, or with `decimals` any number (Istio's Percent). */
export function checkPercent(raw: string, opts: Required & { decimals?: boolean } = {}): Checked<number> {
  const s = raw.trim();
  if (s === '') return opts.required ? { ok: false, message: 'is required: a percentage from 0 to 100', code: 'required' } : { ok: true, value: undefined };
  const n = Number(s);
  if (opts.decimals ? !Number.isFinite(n) : !/^[+-]?\d+$/.test(s)) {
    return { ok: false, message: `must be a ${opts.decimals ? '' : 'whole-number '}percentage from 0 to 100 (got ${JSON.stringify(raw)})`, code: 'percent' };
  }
  if (n < 0 || n > 100) return { ok: false, message: `must be a percentage from 0 to 100 (got ${n})`, code: 'percent', value: n };
  return { ok: true, value: n };
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h)/;

/**
 * A duration as Istio reads it (Go's time.ParseDuration: "10s", "1.5s", "500ms", "1h30m"), in
 * milliseconds; null when it is not one. A bare number other than 0 is refused: "10" could mean anything.
 */
export function parseDurationMs(raw: string): number | null {
  let s = raw.trim();
  if (s === '0') return 0;
  if (s === '') return null;
  let total = 0;
  while (s.length > 0) {
    const m = DURATION.exec(s);
    if (!m) return null;
    const unit = /(ns|us|µs|μs|ms|s|m|h)$/.exec(m[0])![1]!;
    total += Number(m[0].slice(0, -unit.length)) * UNIT_MS[unit]!;
    s = s.slice(m[0].length);
  }
  return Number.isFinite(total) ? total : null;
}

export function isDuration(s: string): boolean {
  return parseDurationMs(s) !== null;
}

const DURATION_EXAMPLES = 'a duration such as "10s", "500ms" or "1m30s"';

/** A duration of at least `minMs` (default 1ms: Istio wants most of them ≥ 1ms); the value is the trimmed text. */
export function checkDuration(raw: string, opts: Required & { minMs?: number } = {}): Checked<string> {
  const s = raw.trim();
  if (s === '') return opts.required ? { ok: false, message: `is required: ${DURATION_EXAMPLES}`, code: 'required' } : { ok: true, value: undefined };
  const ms = parseDurationMs(s);
  const minMs = opts.minMs ?? 1;
  if (ms === null) return { ok: false, message: `must be ${DURATION_EXAMPLES} (got ${JSON.stringify(raw)})`, code: 'duration' };
  if (ms < minMs) return { ok: false, message: `must be at least ${minMs}ms (got ${JSON.stringify(s)})`, code: 'duration', value: s };
  return { ok: true, value: s };
}
