/**
 * Envoy's RBAC HTTP filter (envoy.filters.http.rbac) at request time. The HCM's RBAC filters are
 * looked up once per filter chain (HttpContext); a chain without one pays a single `undefined`
 * check per request. With filters, each request gets one small RbacRequest whose connection facts
 * (peer certificate, addresses, SNI) are read only when a policy asks for them; the peer
 * certificate's identities are parsed once per TLS connection.
 *
 * Semantics (Envoy's): filters run in HCM order, before fault, CORS and the router, and the first
 * denial answers 403 `RBAC: access denied` with response code details
 * `rbac_access_denied_matched_policy[<policy or none>]` (Envoy sets no response flag). ALLOW
 * allows iff a policy matches; DENY denies iff one matches; LOG never blocks. shadow_rules are
 * evaluated for their counters only. A route's RBACPerRoute (weighted cluster, then route, then
 * virtual host, by filter name) replaces the filter's config; one without `rbac` disables it.
 */
import type { Socket } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { evaluateRbac, type PeerCertificateInfo, type RbacFilterConfig, type RbacInput } from '../config/compile-rbac.ts';
import { ipBytes } from '../config/compile-listener.ts';
import { stripQuery } from '../config/route-select.ts';
import type { HttpConnectionManagerConfig, Route, VirtualHost, WeightedClusterEntry } from '../config/model.ts';
import { plainAddress, trustedClientAddress } from './headers.ts';

/** Envoy's local-reply body for a denied request. */
export const RBAC_DENIED_BODY = 'RBAC: access denied';

/** Envoy's http.<stat_prefix>.rbac.* counters (one set per HCM stat prefix and rules prefix). */
export interface RbacCounters {
  allowed: number;
  denied: number;
  shadow_allowed: number;
  shadow_denied: number;
  /** Tern's addition: LOG-action requests that matched a policy (Envoy's access_log_hint). */
  logged: number;
}

/** One RBAC filter of an HCM, ready for requests. */
export interface RbacFilterRuntime {
  readonly name: string;
  readonly config: RbacFilterConfig;
  readonly stats: RbacCounters;
  readonly shadowStats: RbacCounters;
}

const counters = new WeakMap<object, Map<string, { statPrefix: string; rulesPrefix: string; c: RbacCounters }>>();

function countersFor(owner: object, statPrefix: string, rulesPrefix: string): RbacCounters {
  let byKey = counters.get(owner);
  if (!byKey) counters.set(owner, (byKey = new Map()));
  const key = `${statPrefix}\0${rulesPrefix}`;
  let e = byKey.get(key);
  if (!e) byKey.set(key, (e = { statPrefix, rulesPrefix, c: { allowed: 0, denied: 0, shadow_allowed: 0, shadow_denied: 0, logged: 0 } }));
  return e.c;
}

/** The HCM's RBAC filters in order, or undefined when it has none (the common, free case). */
export function rbacFilters(owner: object, hcm: HttpConnectionManagerConfig): readonly RbacFilterRuntime[] | undefined {
  let out: RbacFilterRuntime[] | undefined;
  for (const f of hcm.httpFilters) {
    if (f.kind !== 'rbac') continue;
    (out ??= []).push({
      name: f.name,
      config: f.config,
      stats: countersFor(owner, hcm.statPrefix, f.config.rulesStatPrefix),
      shadowStats: countersFor(owner, hcm.statPrefix, f.config.shadowRulesStatPrefix),
    });
  }
  return out;
}

/** The config that applies to a request: the most specific RBACPerRoute for this filter, else the filter's. */
function effectiveConfig(f: RbacFilterRuntime, route: Route | undefined, vh: VirtualHost | undefined, weighted: WeightedClusterEntry | undefined): RbacFilterConfig | undefined {
  const o = weighted?.perFilterConfig.rbac?.get(f.name) ?? route?.perFilterConfig.rbac?.get(f.name) ?? vh?.perFilterConfig.rbac?.get(f.name);
  return o === undefined ? f.config : o.config;
}

/**
 * Runs the filters; returns undefined when the request may continue, else Envoy's response code
 * details for the denial.
 */
export function checkRbac(filters: readonly RbacFilterRuntime[], input: RbacInput, route: Route | undefined, vh: VirtualHost | undefined, weighted: WeightedClusterEntry | undefined): string | undefined {
  for (let i = 0; i < filters.length; i++) {
    const f = filters[i]!;
    const config = effectiveConfig(f, route, vh, weighted);
    if (config === undefined) continue;
    const shadow = config.shadowRules;
    if (shadow !== undefined) {
      const s = evaluateRbac(shadow, input);
      if (s.allowed) f.shadowStats.shadow_allowed++;
      else f.shadowStats.shadow_denied++;
    }
    const rules = config.rules;
    if (rules === undefined) continue;
    const r = evaluateRbac(rules, input);
    if (r.allowed) {
      f.stats.allowed++;
      if (rules.action === 'LOG' && r.policy !== undefined) f.stats.logged++;
      continue;
    }
    f.stats.denied++;
    return `rbac_access_denied_matched_policy[${r.policy === undefined ? 'none' : r.policy.replace(/\s/g, '_')}]`;
  }
  return undefined;
}

// ---------------------------------------------------------------- the request as RBAC sees it

/** What RbacRequest needs from the data plane's exchange (kept narrow so tests can build one). */
export interface RbacSource {
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly scheme: string;
  readonly hcm: HttpConnectionManagerConfig;
  readonly socket: Socket | undefined;
  /** The original destination of a redirected connection, if any. */
  originalDestination(): { address: string; port: number } | undefined;
}

const UNSET = Symbol('unset');

/** RbacInput over one request; connection facts computed on first use. */
export class RbacRequest implements RbacInput {
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly scheme: string;
  private _urlPath: string | undefined = undefined;
  private _remote: Uint8Array | undefined | typeof UNSET = UNSET;
  private _direct: Uint8Array | undefined | typeof UNSET = UNSET;
  private _dst: { ip: Uint8Array | undefined; port: number } | undefined = undefined;

  constructor(private readonly src: RbacSource) {
    this.method = src.method;
    this.authority = src.authority;
    this.path = src.path;
    this.headers = src.headers;
    this.scheme = src.scheme;
  }

  urlPath(): string {
    if (this._urlPath === undefined) {
      const hcm = this.src.hcm;
      this._urlPath = normalizeUrlPath(stripQuery(this.path), hcm.normalizePath, hcm.mergeSlashes);
    }
    return this._urlPath;
  }

  directRemoteIp(): Uint8Array | undefined {
    if (this._direct === UNSET) this._direct = ipBytes(plainAddress(this.src.socket?.remoteAddress));
    return this._direct;
  }

  remoteIp(): Uint8Array | undefined {
    if (this._remote === UNSET) {
      const peer = plainAddress(this.src.socket?.remoteAddress);
      this._remote = ipBytes(originalClient(this.src.hcm, this.headers['x-forwarded-for'], peer)) ?? ipBytes(peer);
    }
    return this._remote;
  }

  private dst(): { ip: Uint8Array | undefined; port: number } {
    if (this._dst === undefined) {
      const od = this.src.originalDestination();
      const s = this.src.socket;
      this._dst = od ? { ip: ipBytes(od.address), port: od.port } : { ip: ipBytes(plainAddress(s?.localAddress)), port: s?.localPort ?? 0 };
    }
    return this._dst;
  }

  destinationIp(): Uint8Array | undefined {
    return this.dst().ip;
  }

  destinationPort(): number {
    return this.dst().port;
  }

  requestedServerName(): string {
    const s = this.src.socket as (Socket & { encrypted?: boolean; servername?: string | false }) | undefined;
    return s?.encrypted && typeof s.servername === 'string' ? s.servername : '';
  }

  peer(): PeerCertificateInfo | undefined {
    const s = this.src.socket as (TLSSocket & { encrypted?: boolean }) | undefined;
    if (!s?.encrypted) return undefined;
    return peerOf(s);
  }
}

/**
 * The address Envoy treats as the downstream client (remote_ip): with use_remote_address, the peer
 * unless xff_num_trusted_hops says to trust that many x-forwarded-for entries; without it, the
 * x-forwarded-for entry xff_num_trusted_hops from the right (the last one by default), falling
 * back to the peer when x-forwarded-for is absent, too short or not an address.
 */
export function originalClient(hcm: Pick<HttpConnectionManagerConfig, 'useRemoteAddress' | 'xffNumTrustedHops'>, xff: string | string[] | undefined, peer: string): string {
  if (hcm.useRemoteAddress) return trustedClientAddress(xff, peer, hcm.xffNumTrustedHops);
  if (!xff) return peer;
  const parts = (Array.isArray(xff) ? xff.join(',') : xff).split(',');
  const pick = parts[parts.length - 1 - hcm.xffNumTrustedHops]?.trim();
  return pick && ipBytes(pick) ? pick : peer;
}

const peers = new WeakMap<object, PeerCertificateInfo>();
const NO_CERT: PeerCertificateInfo = Object.freeze({ uriSans: [], dnsSans: [], subject: '' });

/** The verified client certificate's identities, parsed once per connection. */
function peerOf(s: TLSSocket): PeerCertificateInfo {
  let p = peers.get(s);
  if (p !== undefined) return p;
  p = NO_CERT;
  try {
    // Only a certificate the handshake verified identifies anyone (the listener rejects others
    // when it asks for one; `authorized` guards listeners that do not).
    const cert = s.authorized ? s.getPeerX509Certificate() : undefined;
    if (cert) p = { ...parseSans(cert.subjectAltName ?? ''), subject: rfc2253(cert.subject) };
  } catch {
    p = NO_CERT;
  }
  peers.set(s, p);
  return p;
}

/** Node's subjectAltName ("DNS:a, URI:spiffe://…", values with ',' quoted) → URI and DNS SANs. */
export function parseSans(san: string): { uriSans: string[]; dnsSans: string[] } {
  const uriSans: string[] = [];
  const dnsSans: string[] = [];
  const re = /(?:^|,\s*)([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (let m = re.exec(san); m !== null; m = re.exec(san)) {
    let v = m[2]!;
    if (v.startsWith('"')) {
      try {
        v = JSON.parse(v) as string;
      } catch {
        continue;
      }
    }
    if (m[1] === 'URI') uriSans.push(v);
    else if (m[1] === 'DNS') dnsSans.push(v);
  }
  return { uriSans, dnsSans };
}

/** Node's "C=US\nO=Org\nCN=name" subject → RFC 2253 order ("CN=name,O=Org,C=US"), as Envoy prints it. */
export function rfc2253(subject: string): string {
  if (!subject) return '';
  return subject.split('\n').filter(Boolean).reverse().map((rdn) => {
    const eq = rdn.indexOf('=');
    if (eq < 0) return rdn;
    return `${rdn.slice(0, eq)}=${rdn.slice(eq + 1).replace(/([,+"\\<>;])/g, '\\$1')}`;
  }).join(',');
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * The HCM's path normalisation for url_path matching: normalize_path decodes percent-encoded
 * unreserved characters, turns '\' into '/' and removes '.' and '..' segments (RFC 3986 6.2.2);
 * merge_slashes collapses repeated '/'. Routing still sees the path as received (documented).
 */
export function normalizeUrlPath(path: string, normalize: boolean, mergeSlashes: boolean): string {
  let p = path;
  if (normalize) {
    if (p.includes('%')) {
      p = p.replace(/%([0-9A-Fa-f]{2})/g, (m, hex: string) => {
        const c = String.fromCharCode(parseInt(hex, 16));
        return UNRESERVED.test(c) ? c : m.toUpperCase();
      });
    }
    if (p.includes('\\')) p = p.replace(/\\/g, '/');
    if (p.includes('.')) p = removeDotSegments(p);
  }
  if (mergeSlashes && p.includes('//')) p = p.replace(/\/{2,}/g, '/');
  return p;
}

function removeDotSegments(path: string): string {
  const segs = path.split('/');
  const out: string[] = [];
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    const last = i === segs.length - 1;
    if (s === '.') {
      if (last) out.push('');
    } else if (s === '..') {
      if (out.length > 1) out.pop();
      if (last) out.push('');
    } else out.push(s);
  }
  const r = out.join('/');
  return r.startsWith('/') ? r : `/${r}`;
}

// ---------------------------------------------------------------- stats

/** `http.<stat_prefix>.rbac.<counter>: value` lines for /stats. */
export function rbacStatsText(owner: object): string {
  const byKey = counters.get(owner);
  if (!byKey) return '';
  let s = '';
  for (const { statPrefix, rulesPrefix, c } of byKey.values()) {
    const p = `http.${statPrefix}.rbac.${rulesPrefix}`;
    s += `${p}allowed: ${c.allowed}\n${p}denied: ${c.denied}\n${p}shadow_allowed: ${c.shadow_allowed}\n${p}shadow_denied: ${c.shadow_denied}\n${p}logged: ${c.logged}\n`;
  }
  return s;
}

/** The same counters as Envoy's Prometheus output names them: envoy_http_rbac_<counter>{envoy_http_conn_manager_prefix="…"}. */
export function rbacStatsPrometheus(owner: object): string {
  const byKey = counters.get(owner);
  if (!byKey || byKey.size === 0) return '';
  const names = new Map<string, string[]>();
  for (const { statPrefix, rulesPrefix, c } of byKey.values()) {
    const label = `{envoy_http_conn_manager_prefix="${statPrefix.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"}`;
    for (const k of ['allowed', 'denied', 'shadow_allowed', 'shadow_denied', 'logged'] as const) {
      const name = `envoy_http_rbac_${(rulesPrefix + k).replace(/[^a-zA-Z0-9_]/g, '_')}`;
      let lines = names.get(name);
      if (!lines) names.set(name, (lines = []));
      lines.push(`${name}${label} ${c[k]}`);
    }
  }
  let s = '';
  for (const [name, lines] of names) s += `# TYPE ${name} counter\n${lines.join('\n')}\n`;
  return s;
}
