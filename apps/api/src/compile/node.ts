import { structToPlain, type Json, type JsonObject, type NodeMessage } from '@tern/xds';
import type { ProxyIdentity } from './types.ts';

// Who is asking: the xDS node's id and metadata (Istio-style upper-case keys, see docs/xds.md
// "Node metadata") as a ProxyIdentity. Metadata values may be native JSON or, as Istio's bootstrap
// writes them, strings (numbers as text, lists and maps as JSON text).

export class NodeMetadataError extends Error {
  constructor(
    readonly path: string,
    readonly rule: string,
  ) {
    super(`${path}: ${rule}`);
  }
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function fail(path: string, rule: string): never {
  throw new NodeMetadataError(path, rule);
}

function text(v: Json | undefined, path: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') fail(path, 'must be a string');
  return v;
}

function port(v: Json | undefined, path: string, allowZero = false): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) fail(path, `must be a port number${allowZero ? ' (0 for none)' : ''}`);
  return n;
}

/** Lists and maps may arrive as JSON text. */
function structured(v: Json | undefined, path: string): Json | undefined {
  if (typeof v !== 'string') return v;
  if (v.trim() === '') return undefined;
  try {
    return JSON.parse(v) as Json;
  } catch {
    fail(path, 'must be JSON (a list or an object) or a native list/object');
  }
}

function stringMap(v: Json | undefined, path: string): Record<string, string> {
  const m = structured(v, path);
  if (m === undefined || m === null) return {};
  if (typeof m !== 'object' || Array.isArray(m)) fail(path, 'must be an object of strings');
  const out: Record<string, string> = {};
  for (const k of Object.keys(m).sort()) {
    const val = m[k];
    if (typeof val !== 'string') fail(`${path}.${k}`, 'must be a string');
    out[k] = val;
  }
  return out;
}

function upstreams(v: Json | undefined): ProxyIdentity['upstreams'] {
  const list = structured(v, 'UPSTREAMS');
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) fail('UPSTREAMS', 'must be a list of {host, port, localPort}');
  const seen = new Map<number, number>();
  return list.map((u, i) => {
    const path = `UPSTREAMS[${i}]`;
    if (u === null || typeof u !== 'object' || Array.isArray(u)) fail(path, 'must be an object {host, port, localPort}');
    const host = text(u['host'], `${path}.host`);
    if (!host) fail(`${path}.host`, 'is required');
    const p = port(u['port'], `${path}.port`);
    if (p === undefined) fail(`${path}.port`, 'is required');
    const localPort = port(u['localPort'], `${path}.localPort`);
    if (localPort === undefined) fail(`${path}.localPort`, 'is required');
    const first = seen.get(localPort);
    if (first !== undefined) fail(`${path}.localPort`, `repeats ${localPort} (first used by UPSTREAMS[${first}])`);
    seen.set(localPort, i);
    return { host: host.toLowerCase(), port: p, localPort };
  });
}

function appPorts(v: Json | undefined): Record<string, number> {
  const m = structured(v, 'APP_PORTS');
  if (m === undefined || m === null) return {};
  if (typeof m !== 'object' || Array.isArray(m)) fail('APP_PORTS', 'must be an object {servicePort: appPort}');
  const out: Record<string, number> = {};
  for (const k of Object.keys(m).sort((a, b) => Number(a) - Number(b))) {
    if (port(k, `APP_PORTS.${k}`) === undefined) fail(`APP_PORTS.${k}`, 'must be keyed by a service port number');
    out[k] = port(m[k], `APP_PORTS.${k}`) ?? fail(`APP_PORTS.${k}`, 'must be a port number');
  }
  return out;
}

const EGRESS_HOST = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?|\.|\*|~)\/(\*|\*?[-a-z0-9.]+)$/;

function egressHosts(v: Json | undefined): string[] | undefined {
  const raw = typeof v === 'string' && !v.trim().startsWith('[') ? v.split(',').map((s) => s.trim()).filter(Boolean) : structured(v, 'EGRESS_HOSTS');
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw)) fail('EGRESS_HOSTS', 'must be a list (or comma-separated text) of "namespace/host" entries');
  return raw.map((h, i) => {
    if (typeof h !== 'string' || !EGRESS_HOST.test(h.toLowerCase())) {
      fail(`EGRESS_HOSTS[${i}]`, 'must be "<namespace>/<host>" as in an Istio Sidecar egress list: namespace ".", "*", "~" or a name; host "*", "*.suffix" or a name');
    }
    return h.toLowerCase();
  });
}

/** Parses an xDS node into the identity the compiler scopes and shapes resources by. */
export function proxyIdentityFromNode(node: NodeMessage): ProxyIdentity {
  const id = node.id ?? '';
  if (id === '') fail('node.id', 'is required');
  const md: JsonObject = structToPlain(node.metadata);
  // Istio's sidecar ids carry the namespace: `sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local`.
  const fromId = /^[^~]+~[^~]*~[^~.]+\.([a-z0-9-]+)~/.exec(id)?.[1];
  const namespace = text(md['NAMESPACE'], 'NAMESPACE') ?? fromId ?? 'default';
  if (!NAME.test(namespace)) fail('NAMESPACE', 'must be a namespace name (DNS-1123 label)');
  const workload = text(md['WORKLOAD_NAME'], 'WORKLOAD_NAME');
  const mode = text(md['TERN_MODE'], 'TERN_MODE');
  if (mode !== undefined && mode !== 'sidecar' && mode !== 'proxyless') fail('TERN_MODE', 'must be "sidecar" or "proxyless"');
  const agent = node.user_agent_name ?? '';
  // gRPC's xDS clients name themselves "gRPC Node Pure JS", "gRPC Go", "grpc-java-netty"…
  const kind = mode ?? (/^grpc/i.test(agent) ? 'proxyless' : 'sidecar');
  const interception = text(md['INTERCEPTION'], 'INTERCEPTION') ?? 'NONE';
  if (interception !== 'NONE' && interception !== 'REDIRECT') fail('INTERCEPTION', 'must be "NONE" or "REDIRECT"');
  const serviceAccount = text(md['SERVICE_ACCOUNT'], 'SERVICE_ACCOUNT');
  const egress = egressHosts(md['EGRESS_HOSTS']);
  return {
    id,
    namespace,
    ...(workload !== undefined ? { workload } : {}),
    labels: stringMap(md['LABELS'], 'LABELS'),
    ...(serviceAccount !== undefined ? { serviceAccount } : {}),
    kind,
    interception,
    outboundPort: port(md['OUTBOUND_PORT'], 'OUTBOUND_PORT', true) ?? 15001,
    inboundPort: port(md['INBOUND_PORT'], 'INBOUND_PORT') ?? 15006,
    upstreams: upstreams(md['UPSTREAMS']),
    appPorts: appPorts(md['APP_PORTS']),
    ...(egress !== undefined ? { egressHosts: egress } : {}),
    metadata: md,
  };
}
