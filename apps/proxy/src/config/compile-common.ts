/**
 * Compilation helpers shared by the listener, route and cluster compilers: typed field access with
 * paths for errors, durations, fractions, RE2-compatible regexes, string/header matchers, header
 * mutations and typed_per_filter_config. Pure functions; they throw ConfigError.
 */
import { durationMs, EXTENSION_TYPE_URL, type Json, type JsonObject } from '@tern/xds';
import {
  ConfigError,
  type AppendAction,
  type CorsPolicy,
  type FaultConfig,
  type Fraction,
  type HeaderMatcher,
  type HeaderMutations,
  type HeaderToAdd,
  type PerFilterConfig,
  type SocketAddress,
  type StringMatcher,
} from './model.ts';
import { compileRbacPerRoute, RBAC_PER_ROUTE_TYPE_URL, type RbacPerRoute } from './compile-rbac.ts';

/** Where we are: the resource being compiled, for error messages. */
export interface Ctx {
  readonly typeUrl: string;
  readonly name: string;
}

export function fail(ctx: Ctx, path: string, rule: string): never {
  throw new ConfigError(ctx.typeUrl, ctx.name, path, rule);
}

export function join(path: string, key: string | number): string {
  return typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;
}

export function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function obj(ctx: Ctx, parent: JsonObject, key: string, path: string): JsonObject | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) fail(ctx, join(path, key), 'must be an object');
  return v;
}

export function list(ctx: Ctx, parent: JsonObject, key: string, path: string): JsonObject[] {
  const v = parent[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(ctx, join(path, key), 'must be a list');
  v.forEach((e, i) => {
    if (!isObject(e)) fail(ctx, join(join(path, key), i), 'must be an object');
  });
  return v as JsonObject[];
}

export function strings(ctx: Ctx, parent: JsonObject, key: string, path: string): string[] {
  const v = parent[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((e) => typeof e !== 'string')) fail(ctx, join(path, key), 'must be a list of strings');
  return v as string[];
}

export function str(ctx: Ctx, parent: JsonObject, key: string, path: string): string | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') fail(ctx, join(path, key), 'must be a string');
  return v;
}

export function num(ctx: Ctx, parent: JsonObject, key: string, path: string): number | undefined {
  let v = parent[key];
  // Wrappers may arrive as {value: n} from hand-written JSON.
  if (isObject(v) && 'value' in v) v = v.value;
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) fail(ctx, join(path, key), 'must be a number');
  return n;
}

export function bool(ctx: Ctx, parent: JsonObject, key: string, path: string): boolean | undefined {
  let v = parent[key];
  if (isObject(v) && 'value' in v) v = v.value;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') fail(ctx, join(path, key), 'must be a boolean');
  return v;
}

/** A duration field in milliseconds ("1.5s" → 1500). */
export function duration(ctx: Ctx, parent: JsonObject, key: string, path: string): number | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  try {
    const ms = durationMs(v);
    if (ms !== undefined && ms < 0) fail(ctx, join(path, key), 'must not be negative');
    return ms;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    return fail(ctx, join(path, key), `must be a duration such as "1.5s", got ${JSON.stringify(v)}`);
  }
}

/** An enum field as its string name (absent = the proto's zero value, given as `dflt`). */
export function enumOf<T extends string>(ctx: Ctx, parent: JsonObject, key: string, path: string, allowed: readonly T[], dflt: T, rejected: Record<string, string> = {}): T {
  const v = parent[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'string' && rejected[v]) fail(ctx, join(path, key), rejected[v]!);
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    fail(ctx, join(path, key), `${JSON.stringify(v)} is not supported (supported: ${allowed.join(', ')})`);
  }
  return v as T;
}

/** Fails on fields present that the proxy rejects (documented as NACK in docs/proxy.md). */
export function rejectFields(ctx: Ctx, parent: JsonObject, path: string, fields: Record<string, string>): void {
  for (const [field, why] of Object.entries(fields)) {
    if (parent[field] !== undefined && parent[field] !== null) fail(ctx, join(path, field), why);
  }
}

/** FractionalPercent {numerator, denominator} or Percent {value} → [0, 1]. */
export function fraction(ctx: Ctx, v: Json | undefined, path: string, dflt: Fraction): Fraction {
  if (v === undefined || v === null) return dflt;
  if (!isObject(v)) fail(ctx, path, 'must be a FractionalPercent object');
  if ('value' in v && !('numerator' in v)) {
    const p = num(ctx, v, 'value', path) ?? 0;
    if (p < 0 || p > 100) fail(ctx, join(path, 'value'), 'must be between 0 and 100');
    return p / 100;
  }
  const numerator = num(ctx, v, 'numerator', path) ?? 0;
  const denominator = enumOf(ctx, v, 'denominator', path, ['HUNDRED', 'TEN_THOUSAND', 'MILLION'], 'HUNDRED');
  const d = denominator === 'HUNDRED' ? 100 : denominator === 'TEN_THOUSAND' ? 10_000 : 1_000_000;
  return Math.min(1, numerator / d);
}

/** runtime_fraction (RuntimeFractionalPercent): only the default value is used (no runtime layer). */
export function runtimeFraction(ctx: Ctx, v: JsonObject | undefined, path: string, dflt: Fraction): Fraction {
  if (!v) return dflt;
  return fraction(ctx, v.default_value, join(path, 'default_value'), 0);
}

export function socketAddress(ctx: Ctx, address: JsonObject | undefined, path: string, opts: { allowHostname: boolean }): SocketAddress {
  if (!address) fail(ctx, path, 'is required');
  const pipe = obj(ctx, address, 'pipe', path);
  if (pipe) {
    const p = str(ctx, pipe, 'path', join(path, 'pipe'));
    if (!p) fail(ctx, join(join(path, 'pipe'), 'path'), 'is required');
    return { address: p, port: 0, protocol: 'TCP', isPipe: true };
  }
  const sa = obj(ctx, address, 'socket_address', path);
  if (!sa) fail(ctx, path, 'socket_address or pipe is required (envoy_internal_address is not supported)');
  const sp = join(path, 'socket_address');
  const host = str(ctx, sa, 'address', sp);
  if (!host) fail(ctx, join(sp, 'address'), 'is required');
  enumOf(ctx, sa, 'protocol', sp, ['TCP'], 'TCP', { UDP: 'UDP is not supported' });
  if (sa.named_port !== undefined) fail(ctx, join(sp, 'named_port'), 'is not supported (use port_value)');
  rejectFields(ctx, sa, sp, { resolver_name: 'custom resolvers are not supported' });
  const port = num(ctx, sa, 'port_value', sp) ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(ctx, join(sp, 'port_value'), 'must be a port number 0-65535');
  if (!opts.allowHostname && !isIp(host)) fail(ctx, join(sp, 'address'), `must be an IP address, got ${JSON.stringify(host)}`);
  return { address: host, port, protocol: 'TCP', isPipe: false };
}

export function isIp(s: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || (s.includes(':') && /^[0-9a-fA-F:.]+(%\w+)?$/.test(s));
}

// ---------------------------------------------------------------- regex

const NOT_RE2: readonly [RegExp, string][] = [
  [/\(\?<?[=!]/, 'lookahead/lookbehind assertions are not RE2 syntax'],
  [/\\[1-9]/, 'backreferences are not RE2 syntax'],
  [/\\k</, 'named backreferences are not RE2 syntax'],
  [/\(\?[a-zA-Z-]+\)(?!$)/, 'inline flags are only supported as a leading (?i)'],
  [/[*+?}]\+/, 'possessive quantifiers are not supported'],
  [/\(\?>/, 'atomic groups are not RE2 syntax'],
];

/**
 * Compiles an Envoy RE2 pattern with JS RegExp. RE2 features JS lacks are translated ((?P<name>…)
 * named groups, a leading (?i), \A and \z); constructs that RE2 rejects (lookaround,
 * backreferences) or that JS cannot compile are rejected, so a pattern accepted here means the
 * same thing as in Envoy. `anchored` = full match (Envoy's safe_regex matchers are full matches).
 */
export function compileRe2(ctx: Ctx, pattern: string, path: string, mode: 'anchored' | 'global'): { regex: RegExp; source: string } {
  let source = pattern;
  let flags = mode === 'global' ? 'g' : '';
  if (source.startsWith('(?i)')) {
    source = source.slice(4);
    flags += 'i';
  }
  for (const [re, why] of NOT_RE2) if (re.test(stripClasses(source))) fail(ctx, path, `regex ${JSON.stringify(pattern)}: ${why}`);
  source = source.replace(/\(\?P</g, '(?<').replace(/\\A/g, '^').replace(/\\z/g, '$');
  let regex: RegExp;
  try {
    regex = new RegExp(mode === 'anchored' ? `^(?:${source})$` : source, flags);
  } catch (err) {
    return fail(ctx, path, `regex ${JSON.stringify(pattern)} does not compile: ${(err as Error).message}`);
  }
  return { regex, source: pattern };
}

/** Removes escaped characters' meaning and [...] classes, so syntax checks see only operators. */
function stripClasses(s: string): string {
  return s.replace(/\\[^1-9k]/g, '_').replace(/\[(?:\\.|[^\]\\])*\]/g, '_');
}

/** RegexMatcher {regex, google_re2?} → compiled. */
export function regexMatcher(ctx: Ctx, m: JsonObject | undefined, path: string, mode: 'anchored' | 'global'): { regex: RegExp; source: string } {
  if (!m) fail(ctx, path, 'is required');
  const pattern = str(ctx, m, 'regex', path);
  if (pattern === undefined) fail(ctx, join(path, 'regex'), 'is required');
  return compileRe2(ctx, pattern, join(path, 'regex'), mode);
}

/** RegexMatchAndSubstitute {pattern, substitution}: RE2 `\1` groups become JS `$1`. */
export function regexRewrite(ctx: Ctx, v: JsonObject | undefined, path: string): { regex: RegExp; substitution: string } | undefined {
  if (!v) return undefined;
  const { regex } = regexMatcher(ctx, obj(ctx, v, 'pattern', path), join(path, 'pattern'), 'global');
  const sub = str(ctx, v, 'substitution', path) ?? '';
  return { regex, substitution: sub.replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1') };
}

// ---------------------------------------------------------------- matchers

/** envoy.type.matcher.v3.StringMatcher. */
export function stringMatcher(ctx: Ctx, m: JsonObject, path: string): StringMatcher {
  const ignoreCase = bool(ctx, m, 'ignore_case', path) ?? false;
  for (const kind of ['exact', 'prefix', 'suffix', 'contains'] as const) {
    const v = m[kind];
    if (v !== undefined && v !== null) {
      if (typeof v !== 'string') fail(ctx, join(path, kind), 'must be a string');
      if (kind !== 'exact' && v === '') fail(ctx, join(path, kind), 'must not be empty');
      return { kind, value: ignoreCase ? v.toLowerCase() : v, ignoreCase };
    }
  }
  const sr = obj(ctx, m, 'safe_regex', path);
  if (sr) {
    const { regex, source } = regexMatcher(ctx, sr, join(path, 'safe_regex'), 'anchored');
    return { kind: 'regex', regex: ignoreCase ? new RegExp(regex.source, regex.flags.includes('i') ? regex.flags : regex.flags + 'i') : regex, source };
  }
  if (m.custom !== undefined) fail(ctx, join(path, 'custom'), 'custom string matchers are not supported');
  // Envoy: an empty StringMatcher is a validation error (match_pattern is required).
  return fail(ctx, path, 'one of exact, prefix, suffix, contains or safe_regex is required');
}

/** Runs a StringMatcher. Hot path: no allocation except toLowerCase for ignore_case. */
export function matchString(m: StringMatcher, value: string): boolean {
  if (m.kind === 'regex') return m.regex.test(value);
  const v = m.ignoreCase ? value.toLowerCase() : value;
  switch (m.kind) {
    case 'exact':
      return v === m.value;
    case 'prefix':
      return v.startsWith(m.value);
    case 'suffix':
      return v.endsWith(m.value);
    default:
      return v.includes(m.value);
  }
}

/** envoy.config.route.v3.HeaderMatcher, current and legacy (exact_match, …) forms. */
export function headerMatcher(ctx: Ctx, m: JsonObject, path: string): HeaderMatcher {
  const rawName = str(ctx, m, 'name', path);
  if (!rawName) fail(ctx, join(path, 'name'), 'is required');
  const name = rawName.toLowerCase();
  const invert = bool(ctx, m, 'invert_match', path) ?? false;
  const treatMissingAsEmpty = bool(ctx, m, 'treat_missing_header_as_empty', path) ?? false;
  let rule: HeaderMatcher['rule'] | undefined;
  const sm = obj(ctx, m, 'string_match', path);
  if (sm) rule = { kind: 'string', matcher: stringMatcher(ctx, sm, join(path, 'string_match')) };
  const legacy: Record<string, 'exact' | 'prefix' | 'suffix' | 'contains'> = { exact_match: 'exact', prefix_match: 'prefix', suffix_match: 'suffix', contains_match: 'contains' };
  for (const [field, kind] of Object.entries(legacy)) {
    const v = str(ctx, m, field, path);
    if (v !== undefined) {
      if (kind !== 'exact' && v === '') fail(ctx, join(path, field), 'must not be empty');
      rule = { kind: 'string', matcher: { kind, value: v, ignoreCase: false } };
    }
  }
  const legacyRe = obj(ctx, m, 'safe_regex_match', path);
  if (legacyRe) {
    const { regex, source } = regexMatcher(ctx, legacyRe, join(path, 'safe_regex_match'), 'anchored');
    rule = { kind: 'string', matcher: { kind: 'regex', regex, source } };
  }
  const present = bool(ctx, m, 'present_match', path);
  if (present !== undefined) rule = { kind: 'present', present };
  const range = obj(ctx, m, 'range_match', path);
  if (range) {
    const start = num(ctx, range, 'start', join(path, 'range_match')) ?? 0;
    const end = num(ctx, range, 'end', join(path, 'range_match')) ?? 0;
    if (end <= start) fail(ctx, join(path, 'range_match'), 'end must be greater than start');
    rule = { kind: 'range', start, end };
  }
  // No match specifier: Envoy matches on presence of the header.
  return { name, rule: rule ?? { kind: 'present', present: true }, invert, treatMissingAsEmpty };
}

// ---------------------------------------------------------------- header mutations

const HOP_OR_PSEUDO = /^:|^host$/;

export function headersToAdd(ctx: Ctx, items: JsonObject[], path: string): HeaderToAdd[] {
  return items.map((item, i) => {
    const p = join(path, i);
    const header = obj(ctx, item, 'header', p);
    if (!header) fail(ctx, join(p, 'header'), 'is required');
    const name = (str(ctx, header, 'key', join(p, 'header')) ?? '').toLowerCase();
    if (!name) fail(ctx, join(join(p, 'header'), 'key'), 'is required');
    if (!/^[!#$%&'*+\-.^_`|~0-9a-z:]+$/.test(name)) fail(ctx, join(join(p, 'header'), 'key'), `${JSON.stringify(name)} is not a valid header name`);
    if (name.startsWith(':')) fail(ctx, join(join(p, 'header'), 'key'), 'pseudo-headers cannot be modified');
    const value = str(ctx, header, 'value', join(p, 'header')) ?? (header.raw_value !== undefined ? Buffer.from(String(header.raw_value), 'base64').toString('latin1') : '');
    if (/[\r\n\0]/.test(value)) fail(ctx, join(join(p, 'header'), 'value'), 'must not contain CR, LF or NUL');
    let appendAction = enumOf<AppendAction>(
      ctx,
      item,
      'append_action',
      p,
      ['APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD', 'OVERWRITE_IF_EXISTS'],
      'APPEND_IF_EXISTS_OR_ADD',
    );
    const append = bool(ctx, item, 'append', p);
    if (append !== undefined) {
      if (item.append_action !== undefined) fail(ctx, join(p, 'append'), 'append and append_action cannot both be set');
      appendAction = append ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD';
    }
    return { name, value, appendAction, keepEmptyValue: bool(ctx, item, 'keep_empty_value', p) ?? false };
  });
}

export function headersToRemove(ctx: Ctx, parent: JsonObject, key: string, path: string): string[] {
  return strings(ctx, parent, key, path).map((h, i) => {
    const name = h.toLowerCase();
    if (HOP_OR_PSEUDO.test(name)) fail(ctx, join(join(path, key), i), `${JSON.stringify(h)} cannot be removed`);
    return name;
  });
}

export const NO_MUTATIONS: HeaderMutations = Object.freeze({ requestAdd: [], requestRemove: [], responseAdd: [], responseRemove: [] });

export function headerMutations(ctx: Ctx, v: JsonObject, path: string): HeaderMutations {
  const requestAdd = headersToAdd(ctx, list(ctx, v, 'request_headers_to_add', path), join(path, 'request_headers_to_add'));
  const responseAdd = headersToAdd(ctx, list(ctx, v, 'response_headers_to_add', path), join(path, 'response_headers_to_add'));
  const requestRemove = headersToRemove(ctx, v, 'request_headers_to_remove', path);
  const responseRemove = headersToRemove(ctx, v, 'response_headers_to_remove', path);
  if (!requestAdd.length && !responseAdd.length && !requestRemove.length && !responseRemove.length) return NO_MUTATIONS;
  return { requestAdd, requestRemove, responseAdd, responseRemove };
}

// ---------------------------------------------------------------- HTTP filter configs

export function faultConfig(ctx: Ctx, v: JsonObject, path: string): FaultConfig {
  rejectFields(ctx, v, path, {
    response_rate_limit: 'response rate limiting is not supported',
    downstream_nodes: 'downstream_nodes is not supported',
  });
  const d = obj(ctx, v, 'delay', path);
  const a = obj(ctx, v, 'abort', path);
  let delay: FaultConfig['delay'];
  if (d) {
    const dp = join(path, 'delay');
    const fixedDelayMs = duration(ctx, d, 'fixed_delay', dp);
    const headerDelay = d.header_delay !== undefined;
    if (fixedDelayMs === undefined && !headerDelay) fail(ctx, dp, 'fixed_delay or header_delay is required');
    delay = { ...(fixedDelayMs !== undefined ? { fixedDelayMs } : {}), headerDelay, fraction: fraction(ctx, d.percentage, join(dp, 'percentage'), 0) };
  }
  let abort: FaultConfig['abort'];
  if (a) {
    const ap = join(path, 'abort');
    const httpStatus = num(ctx, a, 'http_status', ap);
    const grpcStatus = num(ctx, a, 'grpc_status', ap);
    const headerAbort = a.header_abort !== undefined;
    if (httpStatus === undefined && grpcStatus === undefined && !headerAbort) fail(ctx, ap, 'http_status, grpc_status or header_abort is required');
    if (httpStatus !== undefined && (httpStatus < 200 || httpStatus >= 600)) fail(ctx, join(ap, 'http_status'), 'must be in [200, 600)');
    abort = {
      ...(httpStatus !== undefined ? { httpStatus } : {}),
      ...(grpcStatus !== undefined ? { grpcStatus } : {}),
      headerAbort,
      fraction: fraction(ctx, a.percentage, join(ap, 'percentage'), 0),
    };
  }
  const upstreamCluster = str(ctx, v, 'upstream_cluster', path);
  const maxActiveFaults = num(ctx, v, 'max_active_faults', path);
  return {
    ...(delay ? { delay } : {}),
    ...(abort ? { abort } : {}),
    ...(upstreamCluster ? { upstreamCluster } : {}),
    headers: list(ctx, v, 'headers', path).map((h, i) => headerMatcher(ctx, h, join(join(path, 'headers'), i))),
    ...(maxActiveFaults !== undefined ? { maxActiveFaults } : {}),
  };
}

export function corsPolicy(ctx: Ctx, v: JsonObject, path: string): CorsPolicy {
  const maxAge = str(ctx, v, 'max_age', path);
  const allowMethods = str(ctx, v, 'allow_methods', path);
  const allowHeaders = str(ctx, v, 'allow_headers', path);
  const exposeHeaders = str(ctx, v, 'expose_headers', path);
  return {
    allowOrigins: list(ctx, v, 'allow_origin_string_match', path).map((m, i) => stringMatcher(ctx, m, join(join(path, 'allow_origin_string_match'), i))),
    ...(allowMethods !== undefined ? { allowMethods } : {}),
    ...(allowHeaders !== undefined ? { allowHeaders } : {}),
    ...(exposeHeaders !== undefined ? { exposeHeaders } : {}),
    ...(maxAge !== undefined ? { maxAge } : {}),
    allowCredentials: bool(ctx, v, 'allow_credentials', path) ?? false,
    enabled: runtimeFraction(ctx, obj(ctx, v, 'filter_enabled', path), join(path, 'filter_enabled'), 1),
    shadow: runtimeFraction(ctx, obj(ctx, v, 'shadow_enabled', path), join(path, 'shadow_enabled'), 0),
  };
}

const EMPTY_PFC: PerFilterConfig = Object.freeze({ raw: new Map() });

/**
 * typed_per_filter_config: fault, CORS and RBAC overrides are compiled; other types are
 * kept raw and ignored unless wrapped in envoy.config.route.v3.FilterConfig with is_optional (then
 * skipped) — an unknown non-optional override is rejected, like Envoy does for unknown filters.
 */
export function perFilterConfig(ctx: Ctx, parent: JsonObject, path: string): PerFilterConfig {
  const v = obj(ctx, parent, 'typed_per_filter_config', path);
  if (!v || Object.keys(v).length === 0) return EMPTY_PFC;
  const p = join(path, 'typed_per_filter_config');
  const raw = new Map<string, JsonObject>();
  let fault: FaultConfig | undefined;
  let cors: CorsPolicy | undefined;
  let rbac: Map<string, RbacPerRoute> | undefined;
  for (const [filterName, anyJson] of Object.entries(v)) {
    const fp = join(p, filterName);
    if (!isObject(anyJson)) fail(ctx, fp, 'must be an object with "@type"');
    let config = anyJson;
    let optional = false;
    if (config['@type'] === 'type.googleapis.com/envoy.config.route.v3.FilterConfig') {
      optional = config.is_optional === true;
      if (config.disabled === true) continue;
      const inner = obj(ctx, config, 'config', fp);
      if (!inner) continue;
      config = inner;
    }
    raw.set(filterName, config);
    const type = config['@type'];
    if (type === EXTENSION_TYPE_URL.fault) fault = faultConfig(ctx, config, fp);
    else if (type === EXTENSION_TYPE_URL.corsPolicy) cors = corsPolicy(ctx, config, fp);
    else if (type === RBAC_PER_ROUTE_TYPE_URL) (rbac ??= new Map()).set(filterName, compileRbacPerRoute(ctx, config, fp));
    else if (!optional) fail(ctx, join(fp, '@type'), `per-route config of type ${String(type)} is not supported`);
  }
  return { ...(fault ? { fault } : {}), ...(cors ? { cors } : {}), ...(rbac ? { rbac } : {}), raw };
}
