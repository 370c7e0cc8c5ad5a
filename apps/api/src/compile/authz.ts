import { EXTENSION_TYPE_URL, type Json, type JsonObject } from '@tern/xds';
import type { AuthorizationCondition, AuthorizationPolicySpec, AuthorizationRule } from '@tern/shared';
import type { MeshSnapshot, ResourceRow } from '../store/snapshot.ts';
import { arr, labelsOf, selects } from '../policy/mesh-model.ts';
import { cmpStr } from './util.ts';

// Istio AuthorizationPolicy -> Envoy RBAC HTTP filters, as istiod's pilot/pkg/security/authz builds
// them for a sidecar's inbound HTTP connection managers: which policies apply to a workload, and
// the translation of each rule into an envoy.config.rbac.v3.Policy. Pure; see docs/xds.md
// "AuthorizationPolicy" for the table and what is not supported.

export const RBAC_FILTER_NAME = 'envoy.filters.http.rbac';

type Action = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface AuthzPolicy {
  namespace: string;
  name: string;
  action: Action;
  spec: AuthorizationPolicySpec;
  /** matchLabels, or undefined when the policy has no selector (namespace-wide). */
  selector: Record<string, string> | undefined;
  /** targetRef/targetRefs set: Istio attaches these to gateways and waypoints only, never sidecars. */
  targeted: boolean;
  /** `istio.io/dry-run: "true"`: Istio evaluates it as shadow rules only, so it never enforces. */
  dryRun: boolean;
  /** Creation time, then namespace/name: Istio's listing order. */
  order: string;
  row: ResourceRow;
}

const TRUE_VALUES = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']); // Go's strconv.ParseBool

function toPolicy(r: ResourceRow): AuthzPolicy {
  const spec = r.spec as AuthorizationPolicySpec;
  const action = (['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const).find((a) => a === spec.action) ?? 'ALLOW';
  const t = r.createdAt instanceof Date ? r.createdAt.toISOString() : String(r.createdAt ?? '');
  return {
    namespace: r.namespace,
    name: r.name,
    action,
    spec,
    selector: spec.selector ? labelsOf(spec.selector.matchLabels) : undefined,
    targeted: spec.targetRef !== undefined || arr(spec.targetRefs).length > 0,
    dryRun: TRUE_VALUES.has(r.annotations?.['istio.io/dry-run'] ?? ''),
    order: `${t}|${r.namespace}|${r.name}`,
    row: r,
  };
}

/** AuthorizationPolicies of one revision, by namespace, in Istio's order. */
export class AuthzIndex {
  private readonly byNamespace = new Map<string, AuthzPolicy[]>();

  constructor(
    mesh: MeshSnapshot,
    readonly rootNamespace: string,
  ) {
    const all: AuthzPolicy[] = [];
    for (const r of mesh.resources.values()) if (r.kind === 'AuthorizationPolicy') all.push(toPolicy(r));
    all.sort((a, b) => cmpStr(a.order, b.order));
    for (const p of all) (this.byNamespace.get(p.namespace) ?? this.byNamespace.set(p.namespace, []).get(p.namespace)!).push(p);
  }

  get empty(): boolean {
    return this.byNamespace.size === 0;
  }

  /**
   * The policies that apply to a sidecar workload (Istio's ListAuthorizationPolicies): those of the
   * root namespace, then those of the workload's namespace; without a selector a policy covers
   * its namespace (the root namespace: the mesh), with one it covers the workloads carrying its
   * labels. Policies with targetRef(s) are skipped (gateway/waypoint only), as are dry-run ones.
   */
  applicable(namespace: string, labels: Record<string, string>): AuthzPolicy[] {
    const namespaces = namespace === this.rootNamespace ? [namespace] : [this.rootNamespace, namespace];
    const out: AuthzPolicy[] = [];
    for (const ns of namespaces) {
      for (const p of this.byNamespace.get(ns) ?? []) {
        if (p.targeted || p.dryRun) continue;
        if (p.selector && !selects(p.selector, labels)) continue;
        out.push(p);
      }
    }
    return out;
  }
}

/** Same applicable policies, same content: the filters compile the same. */
export function samePolicies(a: readonly AuthzPolicy[], b: readonly AuthzPolicy[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  return a.every((p, i) => {
    const q = b[i]!;
    if (p.row === q.row) return true;
    return p.namespace === q.namespace && p.name === q.name && p.order === q.order && JSON.stringify(p.spec) === JSON.stringify(q.spec);
  });
}

// ---- translation -------------------------------------------------------------------------------

/** A value the translation cannot express (JWT attributes, Envoy metadata...): handled as Istio handles errors. */
class Unsupported extends Error {}

type RbacAction = 'ALLOW' | 'DENY' | 'LOG';
type Gen = (value: string) => JsonObject;

interface Cond {
  values: readonly string[];
  notValues: readonly string[];
  gen: Gen;
}

export interface TranslateOptions {
  /** The mesh trust domain: principals naming `cluster.local/...` are rewritten to it (Istio's trust domain migration). */
  trustDomain: string;
}

// String matchers (Istio's matcher.StringMatcherWithPrefix): "*" any non-empty value, "*x" suffix,
// "x*" prefix, else exact. With a prefix (spiffe://) a suffix match becomes a regex.
function stringMatcher(v: string, prefix = '', ignoreCase = false): JsonObject {
  const ic: JsonObject = ignoreCase ? { ignore_case: true } : {};
  if (v === '*') return { safe_regex: { regex: '.+' } };
  if (v.startsWith('*')) return prefix === '' ? { suffix: v.slice(1), ...ic } : { safe_regex: { regex: `${prefix}.*${v.slice(1)}` } };
  if (v.endsWith('*')) return { prefix: prefix + v.slice(0, -1), ...ic };
  return { exact: prefix + v, ...ic };
}

const regexMatcher = (regex: string): JsonObject => ({ safe_regex: { regex } });

/** Istio's matcher.HeaderMatcher ("*" = present) and HostMatcher (the same, ignoring case). */
function headerMatcher(name: string, v: string, ignoreCase = false): JsonObject {
  if (v === '*') return { name, present_match: true };
  return { name, string_match: stringMatcher(v, '', ignoreCase) };
}

// ---- addresses --------------------------------------------------------------------------------

function parseV4(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.map(Number);
}

/** IPv6 as 16 bytes. */
function parseV6(s: string): number[] | undefined {
  let body = s;
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (lastColon >= 0 && s.slice(lastColon + 1).includes('.')) {
    // An embedded IPv4 tail ("::ffff:10.0.0.1") stands for the last two groups.
    const v4 = parseV4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    body = s.slice(0, lastColon + 1);
    if (!body.endsWith('::')) body = body.slice(0, -1);
  }
  const group = /^[0-9A-Fa-f]{1,4}$/;
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const parse = (p: string) => (p === '' ? [] : p.split(':'));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if (![...head, ...rest].every((g) => group.test(g))) return undefined;
  const want = 8 - tail.length;
  const hex = (gs: string[]) => gs.map((g) => parseInt(g, 16));
  let groups: number[];
  if (halves.length === 2) {
    if (head.length + rest.length >= want) return undefined;
    groups = [...hex(head), ...Array<number>(want - head.length - rest.length).fill(0), ...hex(rest)];
  } else {
    if (head.length !== want) return undefined;
    groups = hex(head);
  }
  return [...groups, ...tail].flatMap((g) => [g >> 8, g & 0xff]);
}

function formatV6(bytes: number[]): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952: the longest run (of two or more) of zero groups becomes "::", the first such run on ties.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (best < 0) return hex(groups);
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}

/** Istio's AddrStrToCidrRange: a single address is a /32 (/128); a block is masked to its prefix. */
export function cidrRange(value: string): JsonObject {
  const slash = value.indexOf('/');
  const addr = slash < 0 ? value : value.slice(0, slash);
  const v4 = parseV4(addr);
  const bytes = v4 ?? parseV6(addr);
  if (!bytes) throw new Unsupported(`not an IP address or CIDR block: ${JSON.stringify(value)}`);
  const bits = bytes.length * 8;
  const len = slash < 0 ? bits : /^[0-9]+$/.test(value.slice(slash + 1)) ? Number(value.slice(slash + 1)) : NaN;
  if (!(len >= 0 && len <= bits)) throw new Unsupported(`bad prefix length in ${JSON.stringify(value)}`);
  const masked = bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, len - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
  return { address_prefix: v4 ? masked.join('.') : formatV6(masked), prefix_len: len };
}

// ---- generators (Istio's model/generator.go) ---------------------------------------------------

const authenticated = (m: JsonObject): JsonObject => ({ authenticated: { principal_name: m } });

function migrateTrustDomain(principal: string, trustDomain: string): string {
  // Istio's trust domain bundle: "cluster.local" in a policy stands for the mesh's own trust domain.
  if (trustDomain === 'cluster.local' || principal.startsWith('*')) return principal;
  const slash = principal.indexOf('/');
  return slash > 0 && principal.slice(0, slash) === 'cluster.local' ? trustDomain + principal.slice(slash) : principal;
}

const gen = {
  destIp: (v: string): JsonObject => ({ destination_ip: cidrRange(v) }),
  destPort: (v: string): JsonObject => {
    if (!/^[0-9]+$/.test(v) || Number(v) > 65535) throw new Unsupported(`not a port: ${JSON.stringify(v)}`);
    return { destination_port: Number(v) };
  },
  sni: (v: string): JsonObject => ({ requested_server_name: stringMatcher(v) }),
  host: (v: string): JsonObject => ({ header: headerMatcher(':authority', v, true) }),
  method: (v: string): JsonObject => ({ header: headerMatcher(':method', v) }),
  path: (v: string): JsonObject => {
    // Path templates ({*}, {**}) need Envoy's uri_template matcher: not supported here.
    if (v.includes('{')) throw new Unsupported(`path templates are not supported: ${JSON.stringify(v)}`);
    return { url_path: { path: stringMatcher(v) } };
  },
  srcIp: (v: string): JsonObject => ({ direct_remote_ip: cidrRange(v) }),
  remoteIp: (v: string): JsonObject => ({ remote_ip: cidrRange(v) }),
  namespace: (v: string): JsonObject => authenticated(regexMatcher(`.*/ns/${v.replaceAll('*', '.*')}/.*`)),
  principal: (td: string) => (v: string): JsonObject => authenticated(stringMatcher(migrateTrustDomain(v, td), 'spiffe://')),
  serviceAccount: (policyNs: string) => (v: string): JsonObject => {
    const slash = v.indexOf('/');
    const [ns, sa] = slash < 0 ? [policyNs, v] : [v.slice(0, slash), v.slice(slash + 1)];
    return authenticated(regexMatcher(`spiffe://.+/ns/${ns}/(.+/|)sa/${sa}(/.+)?`));
  },
  header: (key: string) => (v: string): JsonObject => {
    const m = /^request\.headers\[([^\]]+)\]$/.exec(key);
    if (!m) throw new Unsupported(`bad header key ${JSON.stringify(key)} (want request.headers[NAME])`);
    return { header: headerMatcher(m[1]!, v) };
  },
  unsupported: (why: string) => (): JsonObject => {
    throw new Unsupported(why);
  },
};

const JWT = 'request principals and request.auth.* need JWT authentication, which Tern does not implement';

/** Istio's model.New: a rule's conditions, consolidated into permission and principal lists. Throws for an unknown `when` key (the rule is skipped, as istiod does). */
function ruleModel(rule: AuthorizationRule, policyNs: string, opts: TranslateOptions): { permissions: Cond[][]; principals: Cond[][] } {
  const basePermission: Cond[] = [];
  const basePrincipal: Cond[] = [];
  const cond = (c: AuthorizationCondition, g: Gen): Cond | undefined =>
    (c.values?.length ?? 0) + (c.notValues?.length ?? 0) === 0 ? undefined : { values: c.values ?? [], notValues: c.notValues ?? [], gen: g };
  for (const w of arr(rule.when)) {
    const k = w.key;
    let target: Cond[];
    let g: Gen;
    if (k === 'destination.ip') [target, g] = [basePermission, gen.destIp];
    else if (k === 'destination.port') [target, g] = [basePermission, gen.destPort];
    else if (k === 'connection.sni') [target, g] = [basePermission, gen.sni];
    else if (k.startsWith('experimental.envoy.filters.')) [target, g] = [basePermission, gen.unsupported('experimental.envoy.filters.* (Envoy dynamic metadata) is not supported')];
    else if (k === 'source.ip') [target, g] = [basePrincipal, gen.srcIp];
    else if (k === 'remote.ip') [target, g] = [basePrincipal, gen.remoteIp];
    else if (k === 'source.namespace') [target, g] = [basePrincipal, gen.namespace];
    else if (k === 'source.principal') [target, g] = [basePrincipal, gen.principal(opts.trustDomain)];
    else if (k === 'source.serviceAccount') [target, g] = [basePrincipal, gen.serviceAccount(policyNs)];
    else if (k === 'request.auth.principal' || k === 'request.auth.audiences' || k === 'request.auth.presenter' || k.startsWith('request.auth.claims')) [target, g] = [basePrincipal, gen.unsupported(JWT)];
    else if (k.startsWith('request.headers')) [target, g] = [basePrincipal, gen.header(k)];
    else throw new Error(`unknown attribute ${k}`);
    const c = cond(w, g);
    if (c) target.push(c);
  }
  const front = (list: Cond[], values: readonly string[] | undefined, notValues: readonly string[] | undefined, g: Gen) => {
    if ((values?.length ?? 0) + (notValues?.length ?? 0) > 0) list.unshift({ values: values ?? [], notValues: notValues ?? [], gen: g });
  };
  const principals: Cond[][] = [];
  for (const f of arr(rule.from)) {
    const merged = [...basePrincipal];
    const s = f.source;
    front(merged, s.ipBlocks, s.notIpBlocks, gen.srcIp);
    front(merged, s.remoteIpBlocks, s.notRemoteIpBlocks, gen.remoteIp);
    front(merged, s.namespaces, s.notNamespaces, gen.namespace);
    front(merged, s.requestPrincipals, s.notRequestPrincipals, gen.unsupported(JWT));
    front(merged, s.serviceAccounts, s.notServiceAccounts, gen.serviceAccount(policyNs));
    front(merged, s.principals, s.notPrincipals, gen.principal(opts.trustDomain));
    principals.push(merged);
  }
  if (arr(rule.from).length === 0) principals.push(basePrincipal);
  const permissions: Cond[][] = [];
  for (const t of arr(rule.to)) {
    const merged = [...basePermission];
    const o = t.operation;
    front(merged, o.ports, o.notPorts, gen.destPort);
    front(merged, o.paths, o.notPaths, gen.path);
    front(merged, o.methods, o.notMethods, gen.method);
    front(merged, o.hosts, o.notHosts, gen.host);
    permissions.push(merged);
  }
  if (arr(rule.to).length === 0) permissions.push(basePermission);
  return { permissions, principals };
}

/**
 * One condition's matchers: OR of its values, then NOT(OR of its notValues). A value that cannot be
 * translated fails the whole rule under ALLOW (a smaller allow), and is dropped under DENY/LOG (a
 * wider deny): istiod's checkError.
 */
function condMatchers(c: Cond, action: RbacAction, kind: 'rules' | 'ids'): JsonObject[] {
  const out: JsonObject[] = [];
  const each = (values: readonly string[]): JsonObject[] => {
    const got: JsonObject[] = [];
    for (const v of values) {
      try {
        got.push(c.gen(v));
      } catch (err) {
        if (!(err instanceof Unsupported) || action === 'ALLOW') throw err;
      }
    }
    return got;
  };
  const or = kind === 'rules' ? (xs: JsonObject[]) => ({ or_rules: { rules: xs } }) : (xs: JsonObject[]) => ({ or_ids: { ids: xs } });
  const not = kind === 'rules' ? (x: JsonObject) => ({ not_rule: x }) : (x: JsonObject) => ({ not_id: x });
  const yes = each(c.values);
  if (yes.length > 0) out.push(or(yes));
  const no = each(c.notValues);
  if (no.length > 0) out.push(not(or(no)));
  return out;
}

/** One rule as an RBAC Policy, or undefined when istiod would skip it (with the reason). */
export function translateRule(rule: AuthorizationRule, action: RbacAction, policyNs: string, opts: TranslateOptions): { policy: JsonObject } | { skipped: string } {
  try {
    const m = ruleModel(rule, policyNs, opts);
    const permissions = m.permissions.map((conds) => {
      const and = conds.flatMap((c) => condMatchers(c, action, 'rules'));
      return { and_rules: { rules: and.length > 0 ? and : [{ any: true }] } };
    });
    const principals = m.principals.map((conds) => {
      const and = conds.flatMap((c) => condMatchers(c, action, 'ids'));
      return { and_ids: { ids: and.length > 0 ? and : [{ any: true }] } };
    });
    return { policy: { permissions, principals } };
  } catch (err) {
    return { skipped: (err as Error).message };
  }
}

/** Istio's rbacPolicyMatchNever: what a policy without rules contributes. */
const MATCH_NEVER: JsonObject = { permissions: [{ not_rule: { any: true } }], principals: [{ not_id: { any: true } }] };

const policyName = (p: AuthzPolicy, i: number, prefix = '') => `${prefix}ns[${p.namespace}]-policy[${p.name}]-rule[${i}]`;

function rbacPolicies(policies: readonly AuthzPolicy[], action: RbacAction, opts: TranslateOptions, naming: (p: AuthzPolicy, i: number) => string): JsonObject {
  const out: JsonObject = {};
  for (const p of policies) {
    const rules = arr(p.spec.rules);
    rules.forEach((rule, i) => {
      const r = translateRule(rule, action, p.namespace, opts);
      if ('policy' in r) out[naming(p, i)] = r.policy;
    });
    if (rules.length === 0) out[naming(p, 0)] = MATCH_NEVER;
  }
  return out;
}

function rbacFilter(action: RbacAction, policies: Json): JsonObject {
  return { name: RBAC_FILTER_NAME, typed_config: { '@type': EXTENSION_TYPE_URL.httpRbac, rules: { action, policies } } };
}

/**
 * The RBAC HTTP filters for a workload's applicable policies, in istiod's order: CUSTOM first
 * (Tern has no external authorizer, so — as istiod does when a CUSTOM provider is missing — a DENY
 * filter for the requests those rules match), then AUDIT (action LOG), DENY, ALLOW. Empty when no
 * policy applies. An ALLOW filter whose policies match nothing denies everything.
 */
export function rbacHttpFilters(policies: readonly AuthzPolicy[], opts: TranslateOptions): JsonObject[] {
  const of = (a: Action) => policies.filter((p) => p.action === a);
  const filters: JsonObject[] = [];
  const custom = of('CUSTOM');
  if (custom.length > 0) filters.push(rbacFilter('DENY', rbacPolicies(custom, 'DENY', opts, (p, i) => `${policyName(p, i, 'istio-ext-authz-')}-deny-due-to-bad-CUSTOM-action`)));
  const audit = of('AUDIT');
  if (audit.length > 0) filters.push(rbacFilter('LOG', rbacPolicies(audit, 'LOG', opts, (p, i) => policyName(p, i))));
  const deny = of('DENY');
  if (deny.length > 0) filters.push(rbacFilter('DENY', rbacPolicies(deny, 'DENY', opts, (p, i) => policyName(p, i))));
  const allow = of('ALLOW');
  if (allow.length > 0) filters.push(rbacFilter('ALLOW', rbacPolicies(allow, 'ALLOW', opts, (p, i) => policyName(p, i))));
  return filters;
}
