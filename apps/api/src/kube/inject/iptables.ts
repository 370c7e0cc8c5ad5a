// The pod's traffic redirection, as istio-init writes it (Istio's "REDIRECT" mode), rendered as
// `iptables-restore --noflush` input for the nat table so the init container applies it in one
// atomic step. Pure: the webhook puts the text into the init container's command.
//
// Differences from Istio, on purpose:
// - No `-o lo ... --uid-owner 1337 -j ISTIO_IN_REDIRECT` (a pod calling itself through its service
//   going through its own inbound listener): Istio relies on its inbound passthrough binding to
//   127.0.0.6 to keep that from looping; the Tern proxy does not support upstream_bind_config yet,
//   so the proxy's own connections to the pod's address are simply left alone.
// - IPv4 only (no ip6tables rules yet).

export interface RedirectOptions {
  /** The proxy's user id: its own connections are never redirected. */
  proxyUid: number;
  /** The proxy's group id, excluded too (as istio-init does). */
  proxyGid: number;
  /** `virtualOutbound` (node metadata OUTBOUND_PORT). */
  outboundPort: number;
  /** `virtualInbound` (node metadata INBOUND_PORT). */
  inboundPort: number;
  /** '*' (every port) or the list of inbound ports to redirect. */
  includeInboundPorts: '*' | number[];
  /** Inbound ports never redirected: the proxy's own health, probe and metrics ports, plus the user's. */
  excludeInboundPorts: number[];
  /** '*' (every destination) or CIDRs whose outbound traffic is redirected. */
  includeOutboundIpRanges: '*' | string[];
  excludeOutboundIpRanges: string[];
  excludeOutboundPorts: number[];
}

export const CHAINS = { inbound: 'TERN_INBOUND', inRedirect: 'TERN_IN_REDIRECT', output: 'TERN_OUTPUT', redirect: 'TERN_REDIRECT' } as const;

/** The nat-table rules, one `-A …` (or `-N …`) argument list per line, in order. */
export function redirectRules(o: RedirectOptions): string[][] {
  const c = CHAINS;
  const rules: string[][] = [
    ['-N', c.inbound],
    ['-N', c.inRedirect],
    ['-N', c.output],
    ['-N', c.redirect],
    ['-A', c.redirect, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(o.outboundPort)],
    ['-A', c.inRedirect, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(o.inboundPort)],
  ];
  // Inbound: PREROUTING sees connections arriving from outside the pod.
  const inboundPorts = o.includeInboundPorts;
  if (inboundPorts === '*' || inboundPorts.length > 0) {
    rules.push(['-A', 'PREROUTING', '-p', 'tcp', '-j', c.inbound]);
    if (inboundPorts === '*') {
      for (const p of unique(o.excludeInboundPorts)) rules.push(['-A', c.inbound, '-p', 'tcp', '--dport', String(p), '-j', 'RETURN']);
      rules.push(['-A', c.inbound, '-p', 'tcp', '-j', c.inRedirect]);
    } else {
      const excluded = new Set(o.excludeInboundPorts);
      for (const p of unique(inboundPorts)) if (!excluded.has(p)) rules.push(['-A', c.inbound, '-p', 'tcp', '--dport', String(p), '-j', c.inRedirect]);
    }
  }
  // Outbound: OUTPUT sees connections made inside the pod.
  rules.push(['-A', 'OUTPUT', '-p', 'tcp', '-j', c.output]);
  // The proxy's own upstream connections must leave as they are, or they would loop back into it.
  rules.push(['-A', c.output, '-m', 'owner', '--uid-owner', String(o.proxyUid), '-j', 'RETURN']);
  rules.push(['-A', c.output, '-m', 'owner', '--gid-owner', String(o.proxyGid), '-j', 'RETURN']);
  // The app talking to itself (loopback, or the pod's own address, which also leaves through lo).
  rules.push(['-A', c.output, '-o', 'lo', '-j', 'RETURN']);
  rules.push(['-A', c.output, '-d', '127.0.0.1/32', '-j', 'RETURN']);
  for (const p of unique(o.excludeOutboundPorts)) rules.push(['-A', c.output, '-p', 'tcp', '--dport', String(p), '-j', 'RETURN']);
  for (const cidr of unique(o.excludeOutboundIpRanges)) rules.push(['-A', c.output, '-d', cidr, '-j', 'RETURN']);
  if (o.includeOutboundIpRanges === '*') rules.push(['-A', c.output, '-j', c.redirect]);
  else for (const cidr of unique(o.includeOutboundIpRanges)) rules.push(['-A', c.output, '-d', cidr, '-j', c.redirect]);
  return rules;
}

/** `iptables-restore --noflush` input for the nat table. */
export function iptablesRestoreInput(o: RedirectOptions): string {
  return ['*nat', ...redirectRules(o).map((r) => r.join(' ')), 'COMMIT', ''].join('\n');
}

const unique = <T>(xs: readonly T[]): T[] => [...new Set(xs)];

export class RedirectOptionError extends Error {
  override readonly name = 'RedirectOptionError';
}

/** A comma-separated port list from an annotation ("" = none, "*" only where allowed). */
export function parsePortList(value: string, where: string, allowStar: true): '*' | number[];
export function parsePortList(value: string, where: string, allowStar?: false): number[];
export function parsePortList(value: string, where: string, allowStar = false): '*' | number[] {
  const v = value.trim();
  if (allowStar && v === '*') return '*';
  if (v === '') return [];
  return v.split(',').map((s, i) => {
    const t = s.trim();
    const n = Number(t);
    if (!/^\d+$/.test(t) || n < 1 || n > 65535) throw new RedirectOptionError(`${where}: item ${i + 1} (${JSON.stringify(t)}) must be a port number 1-65535${allowStar ? ' (or the whole value "*")' : ''}`);
    return n;
  });
}

const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;

/** A comma-separated IPv4 CIDR list from an annotation ("" = none, "*" only where allowed). */
export function parseCidrList(value: string, where: string, allowStar: true): '*' | string[];
export function parseCidrList(value: string, where: string, allowStar?: false): string[];
export function parseCidrList(value: string, where: string, allowStar = false): '*' | string[] {
  const v = value.trim();
  if (allowStar && v === '*') return '*';
  if (v === '') return [];
  return v.split(',').map((s, i) => {
    const t = s.trim();
    const m = IPV4_CIDR.exec(t);
    const ok = m && m.slice(1, 5).every((o) => Number(o) <= 255) && (m[5] === undefined || Number(m[5]) <= 32);
    if (!ok) throw new RedirectOptionError(`${where}: item ${i + 1} (${JSON.stringify(t)}) must be an IPv4 address or CIDR such as 10.0.0.0/8 (IPv6 is not supported yet)`);
    return m[5] === undefined ? `${t}/32` : t;
  });
}
