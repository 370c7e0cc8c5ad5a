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

// ---- lists, labels and addresses (the security wizards) ----

/** A comma- or newline-separated list as typed, trimmed, without empty entries. */
export function splitList(raw: string): string[] {
  return raw.split(/[,\n]/).map((s) => s.trim()).filter((s) => s !== '');
}

function isIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

function isIPv6(s: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || s.split('::').length > 2) return false;
  let body = s;
  let need = 8;
  const last = s.lastIndexOf(':');
  if (s.slice(last + 1).includes('.')) {
    if (!isIPv4(s.slice(last + 1))) return false;
    body = `${s.slice(0, last + 1)}0`;
    need = 7;
  }
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const halves = body.split('::').map(groups);
  if (halves.some((h) => h.some((g) => !/^[0-9A-Fa-f]{1,4}$/.test(g)))) return false;
  const n = halves.reduce((a, h) => a + h.length, 0);
  return halves.length === 2 ? n < need : n === need;
}

/** An IP address or a CIDR block ("10.0.0.1", "10.0.0.0/16", "fd00::/8"), as AuthorizationPolicy ipBlocks take them. */
export function isIpOrCidr(s: string): boolean {
  const [ip = '', bits, ...rest] = s.split('/');
  if (rest.length > 0) return false;
  const v4 = isIPv4(ip);
  if (!v4 && !isIPv6(ip)) return false;
  if (bits === undefined) return true;
  return /^(0|[1-9]\d{0,2})$/.test(bits) && Number(bits) <= (v4 ? 32 : 128);
}

/** A list whose every entry passes `valid`; the first bad entry is named. */
export function checkList(raw: string, valid: (v: string) => boolean, what: string): Checked<string[]> {
  const items = splitList(raw);
  const bad = items.find((v) => !valid(v));
  if (bad !== undefined) return { ok: false, message: `must be ${what} (got ${JSON.stringify(bad)})`, code: 'list_item', value: items };
  return { ok: true, value: items.length > 0 ? items : undefined };
}

export const checkIpBlocks = (raw: string) => checkList(raw, isIpOrCidr, 'IP addresses or CIDR blocks such as "10.0.0.0/16"');
export const checkPorts = (raw: string) => checkList(raw, (v) => /^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 65535, 'port numbers from 1 to 65535');

const LABEL_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Kubernetes labels typed as "app=reviews, version=v1". */
export function checkLabels(raw: string, opts: Required = {}): Checked<Record<string, string>> {
  const items = splitList(raw);
  if (items.length === 0) return opts.required ? { ok: false, message: 'is required: labels such as "app=reviews, version=v1"', code: 'required' } : { ok: true, value: undefined };
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const k = eq < 0 ? item : item.slice(0, eq).trim();
    const v = eq < 0 ? undefined : item.slice(eq + 1).trim();
    if (v === undefined) return { ok: false, message: `must be key=value pairs (got ${JSON.stringify(item)})`, code: 'labels' };
    if (!LABEL_NAME.test(k)) return { ok: false, message: `has an invalid label key ${JSON.stringify(k)}`, code: 'labels' };
    if (!LABEL_VALUE.test(v)) return { ok: false, message: `has an invalid value ${JSON.stringify(v)} for ${k}`, code: 'labels' };
    out[k] = v;
  }
  return { ok: true, value: out };
}

/** Labels as the form shows them: "app=reviews, version=v1". */
export function formatLabels(labels: Record<string, string> | undefined): string {
  return Object.entries(labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');
}

/** A resource name (DNS-1123 subdomain). */
export function checkResourceName(raw: string): Checked<string> {
  const s = raw.trim();
  if (s === '') return { ok: false, message: 'is required', code: 'required' };
  if (s.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(s)) {
    return { ok: false, message: `must be lowercase letters, digits, "-" and "." (got ${JSON.stringify(raw)})`, code: 'name' };
  }
  return { ok: true, value: s };
}
