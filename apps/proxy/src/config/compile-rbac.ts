/**
 * envoy.extensions.filters.http.rbac.v3.RBAC (and RBACPerRoute) → a compiled matcher tree. Pure:
 * every matcher becomes a closure over already-parsed values (string matchers, CIDR bytes, ports),
 * so evaluating a request walks closures and compares strings and bytes, nothing is parsed per
 * request. Unsupported parts (metadata, filter_state, CEL conditions, the generic `matcher` API,
 * custom extensions) throw ConfigError naming the field: the listener or route table is NACKed
 * rather than enforced differently from Envoy.
 */
import type { JsonObject } from '@tern/xds';
import { inRange } from './chain-select.ts';
import { bool, enumOf, fail, headerMatcher, isObject, join, list, matchString, num, obj, rejectFields, stringMatcher, type Ctx } from './compile-common.ts';
import { cidr } from './compile-listener.ts';
import type { CidrRange, StringMatcher } from './model.ts';
import { matchHeader, type RouteRequest } from './route-select.ts';

export const RBAC_PER_ROUTE_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute';

/** The verified client certificate's identities (Envoy's Ssl::ConnectionInfo view). */
export interface PeerCertificateInfo {
  readonly uriSans: readonly string[];
  readonly dnsSans: readonly string[];
  /** RFC 2253 subject ("CN=a,O=b"); '' when the client presented no certificate. */
  readonly subject: string;
}

/**
 * What the matchers read from a request. Connection-level values are methods so the data plane can
 * compute them only when a policy asks (most Istio policies read two or three of them).
 */
export interface RbacInput extends RouteRequest {
  /** The path without query and fragment, normalised as the HCM says (normalize_path, merge_slashes). */
  urlPath(): string;
  /** The TCP peer's address as bytes (direct_remote_ip, source_ip). */
  directRemoteIp(): Uint8Array | undefined;
  /** The original client per x-forwarded-for and the HCM's xff settings (remote_ip). */
  remoteIp(): Uint8Array | undefined;
  /** The connection's local (or original destination) address and port. */
  destinationIp(): Uint8Array | undefined;
  destinationPort(): number;
  /** SNI of a TLS connection, '' otherwise. */
  requestedServerName(): string;
  /** undefined when the downstream connection is not TLS; no certificate → empty SANs and subject. */
  peer(): PeerCertificateInfo | undefined;
}

export type RbacMatcher = (r: RbacInput) => boolean;

export interface RbacPolicy {
  readonly name: string;
  /** Any of the permissions (the list OR-ed once at compile time). */
  readonly permission: RbacMatcher;
  /** Any of the principals. */
  readonly principal: RbacMatcher;
}

/** envoy.config.rbac.v3.RBAC: the action and its policies (sorted by name, as Envoy's map iteration is). */
export interface RbacRules {
  readonly action: 'ALLOW' | 'DENY' | 'LOG';
  readonly policies: readonly RbacPolicy[];
}

/** A compiled RBAC HTTP filter config. No `rules` = the filter enforces nothing (Envoy: absent rules, no engine). */
export interface RbacFilterConfig {
  readonly rules?: RbacRules;
  readonly shadowRules?: RbacRules;
  /** rules_stat_prefix / shadow_rules_stat_prefix, inserted before the counter names. */
  readonly rulesStatPrefix: string;
  readonly shadowRulesStatPrefix: string;
}

/** RBACPerRoute: `config` undefined = RBAC disabled for the route (Envoy: an absent `rbac` disables it). */
export interface RbacPerRoute {
  readonly config?: RbacFilterConfig;
}

/** The HTTP filter's typed_config. */
export function compileRbacFilter(ctx: Ctx, tc: JsonObject, path: string): RbacFilterConfig {
  rejectFields(ctx, tc, path, {
    matcher: 'the matcher-tree form of RBAC (matcher) is not supported; use rules',
    shadow_matcher: 'the matcher-tree form of RBAC (shadow_matcher) is not supported; use shadow_rules',
  });
  const r = obj(ctx, tc, 'rules', path);
  const s = obj(ctx, tc, 'shadow_rules', path);
  const rules = r ? compileRbacRules(ctx, r, join(path, 'rules')) : undefined;
  const shadowRules = s ? compileRbacRules(ctx, s, join(path, 'shadow_rules')) : undefined;
  return {
    ...(rules ? { rules } : {}),
    ...(shadowRules ? { shadowRules } : {}),
    rulesStatPrefix: str0(ctx, tc, 'rules_stat_prefix', path),
    shadowRulesStatPrefix: str0(ctx, tc, 'shadow_rules_stat_prefix', path),
  };
}

/** RBACPerRoute {rbac}: an absent rbac disables the filter on the route. */
export function compileRbacPerRoute(ctx: Ctx, v: JsonObject, path: string): RbacPerRoute {
  const rbac = obj(ctx, v, 'rbac', path);
  return rbac ? { config: compileRbacFilter(ctx, rbac, join(path, 'rbac')) } : {};
}

/** envoy.config.rbac.v3.RBAC. */
export function compileRbacRules(ctx: Ctx, v: JsonObject, path: string): RbacRules {
  rejectFields(ctx, v, path, { audit_logging_options: 'audit_logging_options is not supported' });
  const action = enumOf(ctx, v, 'action', path, ['ALLOW', 'DENY', 'LOG'], 'ALLOW');
  const policiesJson = obj(ctx, v, 'policies', path) ?? {};
  const pp = join(path, 'policies');
  const names = Object.keys(policiesJson).sort();
  const policies = names.map((name) => {
    const p = policiesJson[name];
    const at = join(pp, name);
    if (!isObject(p)) fail(ctx, at, 'must be a Policy object');
    return compilePolicy(ctx, name, p, at);
  });
  return { action, policies };
}

function compilePolicy(ctx: Ctx, name: string, p: JsonObject, path: string): RbacPolicy {
  rejectFields(ctx, p, path, {
    condition: 'CEL conditions (condition) are not supported',
    checked_condition: 'CEL conditions (checked_condition) are not supported',
    cel_config: 'cel_config is not supported',
  });
  const perms = list(ctx, p, 'permissions', path);
  const princ = list(ctx, p, 'principals', path);
  if (perms.length === 0) fail(ctx, join(path, 'permissions'), 'at least one permission is required');
  if (princ.length === 0) fail(ctx, join(path, 'principals'), 'at least one principal is required');
  return {
    name,
    permission: some(perms.map((x, i) => permission(ctx, x, join(join(path, 'permissions'), i)))),
    principal: some(princ.map((x, i) => principal(ctx, x, join(join(path, 'principals'), i)))),
  };
}

const ALWAYS: RbacMatcher = () => true;

const UNSUPPORTED_PERMISSION: Record<string, string> = {
  metadata: 'metadata permissions are not supported (no dynamic metadata in this proxy)',
  sourced_metadata: 'sourced_metadata permissions are not supported',
  matcher: 'extension permissions (matcher) are not supported',
  uri_template: 'uri_template permissions are not supported',
};

const UNSUPPORTED_PRINCIPAL: Record<string, string> = {
  metadata: 'metadata principals are not supported (JWT-derived identities need dynamic metadata this proxy does not have)',
  sourced_metadata: 'sourced_metadata principals are not supported',
  filter_state: 'filter_state principals are not supported',
  custom: 'custom principal extensions are not supported',
};

/** The one key set in a oneof object, or a failure naming what is wrong. */
function oneKey(ctx: Ctx, v: JsonObject, path: string, what: string): string {
  const keys = Object.keys(v).filter((k) => v[k] !== undefined && v[k] !== null);
  if (keys.length === 0) fail(ctx, path, `${what} is empty: exactly one rule must be set`);
  if (keys.length > 1) fail(ctx, path, `${what} sets ${keys.join(' and ')}: exactly one rule must be set`);
  return keys[0]!;
}

/** envoy.config.rbac.v3.Permission. */
export function permission(ctx: Ctx, v: JsonObject, path: string): RbacMatcher {
  const key = oneKey(ctx, v, path, 'a permission');
  const at = join(path, key);
  if (UNSUPPORTED_PERMISSION[key]) fail(ctx, at, UNSUPPORTED_PERMISSION[key]!);
  switch (key) {
    case 'and_rules':
    case 'or_rules': {
      const set = obj(ctx, v, key, path)!;
      const rules = list(ctx, set, 'rules', at).map((x, i) => permission(ctx, x, join(join(at, 'rules'), i)));
      if (rules.length === 0) fail(ctx, join(at, 'rules'), 'at least one rule is required');
      return key === 'and_rules' ? all(rules) : some(rules);
    }
    case 'any':
      return anyTrue(ctx, v, path);
    case 'header':
      return header(ctx, v, path);
    case 'url_path':
      return urlPath(ctx, v, path);
    case 'destination_ip': {
      const range = cidrOf(ctx, v, key, path);
      return (r) => inCidr(range, r.destinationIp());
    }
    case 'destination_port': {
      const port = num(ctx, v, key, path) ?? 0;
      if (!Number.isInteger(port) || port < 0 || port > 65535) fail(ctx, at, 'must be a port number 0-65535');
      return (r) => r.destinationPort() === port;
    }
    case 'destination_port_range': {
      const range = obj(ctx, v, key, path)!;
      const start = num(ctx, range, 'start', at) ?? 0;
      const end = num(ctx, range, 'end', at) ?? 0;
      if (end < start) fail(ctx, at, 'end must not be less than start');
      return (r) => {
        const p = r.destinationPort();
        return p >= start && p < end;
      };
    }
    case 'not_rule': {
      const inner = permission(ctx, obj(ctx, v, key, path)!, at);
      return (r) => !inner(r);
    }
    case 'requested_server_name': {
      const m = stringMatcher(ctx, obj(ctx, v, key, path)!, at);
      return (r) => matchString(m, r.requestedServerName());
    }
    default:
      return fail(ctx, at, `unknown permission rule ${JSON.stringify(key)}`);
  }
}

/** envoy.config.rbac.v3.Principal. */
export function principal(ctx: Ctx, v: JsonObject, path: string): RbacMatcher {
  const key = oneKey(ctx, v, path, 'a principal');
  const at = join(path, key);
  if (UNSUPPORTED_PRINCIPAL[key]) fail(ctx, at, UNSUPPORTED_PRINCIPAL[key]!);
  switch (key) {
    case 'and_ids':
    case 'or_ids': {
      const set = obj(ctx, v, key, path)!;
      const ids = list(ctx, set, 'ids', at).map((x, i) => principal(ctx, x, join(join(at, 'ids'), i)));
      if (ids.length === 0) fail(ctx, join(at, 'ids'), 'at least one id is required');
      return key === 'and_ids' ? all(ids) : some(ids);
    }
    case 'any':
      return anyTrue(ctx, v, path);
    case 'authenticated':
      return authenticated(ctx, obj(ctx, v, key, path)!, at);
    case 'source_ip':
    case 'direct_remote_ip': {
      const range = cidrOf(ctx, v, key, path);
      return (r) => inCidr(range, r.directRemoteIp());
    }
    case 'remote_ip': {
      const range = cidrOf(ctx, v, key, path);
      return (r) => inCidr(range, r.remoteIp());
    }
    case 'header':
      return header(ctx, v, path);
    case 'url_path':
      return urlPath(ctx, v, path);
    case 'not_id': {
      const inner = principal(ctx, obj(ctx, v, key, path)!, at);
      return (r) => !inner(r);
    }
    default:
      return fail(ctx, at, `unknown principal rule ${JSON.stringify(key)}`);
  }
}

/**
 * Principal.Authenticated, as Envoy's AuthenticatedMatcher: never on a plaintext connection; any
 * TLS connection when principal_name is unset; else the URI SANs, then the DNS SANs, then the
 * subject of the client certificate.
 */
function authenticated(ctx: Ctx, v: JsonObject, path: string): RbacMatcher {
  const pn = obj(ctx, v, 'principal_name', path);
  if (!pn) return (r) => r.peer() !== undefined;
  const m = stringMatcher(ctx, pn, join(path, 'principal_name'));
  return (r) => {
    const p = r.peer();
    if (p === undefined) return false;
    for (const s of p.uriSans) if (matchString(m, s)) return true;
    for (const s of p.dnsSans) if (matchString(m, s)) return true;
    return matchString(m, p.subject);
  };
}

function anyTrue(ctx: Ctx, v: JsonObject, path: string): RbacMatcher {
  if (bool(ctx, v, 'any', path) !== true) fail(ctx, join(path, 'any'), 'must be true');
  return ALWAYS;
}

function header(ctx: Ctx, v: JsonObject, path: string): RbacMatcher {
  const m = headerMatcher(ctx, obj(ctx, v, 'header', path)!, join(path, 'header'));
  return (r) => matchHeader(m, r);
}

/** envoy.type.matcher.v3.PathMatcher {path: StringMatcher}, against the path without query. */
function urlPath(ctx: Ctx, v: JsonObject, path: string): RbacMatcher {
  const pm = obj(ctx, v, 'url_path', path)!;
  const at = join(path, 'url_path');
  const sm = obj(ctx, pm, 'path', at);
  if (!sm) fail(ctx, join(at, 'path'), 'is required');
  const m: StringMatcher = stringMatcher(ctx, sm, join(at, 'path'));
  return (r) => matchString(m, r.urlPath());
}

function cidrOf(ctx: Ctx, v: JsonObject, key: string, path: string): CidrRange {
  return cidr(ctx, obj(ctx, v, key, path)!, join(path, key));
}

/** A v4 range also matches the v4-mapped v6 form and vice versa (Node reports either). */
function inCidr(range: CidrRange, ip: Uint8Array | undefined): boolean {
  if (ip === undefined) return false;
  if (ip.length === range.bytes.length) return inRange(range, ip);
  if (ip.length === 16 && range.bytes.length === 4 && isV4Mapped(ip)) return inRange(range, ip.subarray(12));
  return false;
}

function isV4Mapped(ip: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (ip[i] !== 0) return false;
  return ip[10] === 0xff && ip[11] === 0xff;
}

function all(ms: readonly RbacMatcher[]): RbacMatcher {
  if (ms.length === 1) return ms[0]!;
  return (r) => {
    for (let i = 0; i < ms.length; i++) if (!ms[i]!(r)) return false;
    return true;
  };
}

function some(ms: readonly RbacMatcher[]): RbacMatcher {
  if (ms.length === 1) return ms[0]!;
  return (r) => {
    for (let i = 0; i < ms.length; i++) if (ms[i]!(r)) return true;
    return false;
  };
}

function str0(ctx: Ctx, v: JsonObject, key: string, path: string): string {
  const s = v[key];
  if (s === undefined || s === null) return '';
  if (typeof s !== 'string') fail(ctx, join(path, key), 'must be a string');
  return s;
}

// ---------------------------------------------------------------- evaluation

/** The outcome of one rule set: Envoy's engine result and the policy that decided it. */
export interface RbacResult {
  readonly allowed: boolean;
  /** The matched policy's name; undefined when none matched. */
  readonly policy: string | undefined;
}

/** The first policy (by name) whose permissions and principals both match, or undefined. */
export function matchingPolicy(rules: RbacRules, r: RbacInput): string | undefined {
  const ps = rules.policies;
  for (let i = 0; i < ps.length; i++) {
    const p = ps[i]!;
    if (p.permission(r) && p.principal(r)) return p.name;
  }
  return undefined;
}

/**
 * Envoy's RoleBasedAccessControlEngineImpl::handleAction: ALLOW allows iff a policy matches (so no
 * policies denies everything), DENY denies iff one matches, LOG always allows.
 */
export function evaluateRbac(rules: RbacRules, r: RbacInput): RbacResult {
  const policy = matchingPolicy(rules, r);
  switch (rules.action) {
    case 'ALLOW':
      return { allowed: policy !== undefined, policy };
    case 'DENY':
      return { allowed: policy === undefined, policy };
    default:
      return { allowed: true, policy };
  }
}
