import { TLS_MODE_LABEL, type ServicePort } from '@tern/shared';
import type { ServiceSpec, WorkloadSpec } from '../store/registry.ts';

// Kubernetes objects -> Tern registry rows. Pure: the informers' caches in, the rows the registry
// should hold out. Works on both shapes client-node hands over (typed list items and raw watch
// JSON) by reading only plain fields.

export const KUBERNETES_SOURCE = 'kubernetes';
/** The container Tern's injector adds: a pod runs a Tern sidecar only when it has one. */
export const SIDECAR_CONTAINER = 'tern-proxy';
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

type Labels = Record<string, string>;

export interface KMeta {
  name?: string;
  namespace?: string;
  labels?: Labels;
  deletionTimestamp?: unknown;
}

export interface KServicePort {
  name?: string;
  port: number;
  protocol?: string;
  appProtocol?: string;
  targetPort?: number | string;
}

export interface KService {
  metadata?: KMeta;
  spec?: { type?: string; selector?: Labels; ports?: KServicePort[] };
}

export interface KContainer {
  name: string;
  ports?: Array<{ name?: string; containerPort: number; protocol?: string }>;
  restartPolicy?: string;
}

export interface KPod {
  metadata?: KMeta;
  spec?: { serviceAccountName?: string; containers?: KContainer[]; initContainers?: KContainer[]; hostNetwork?: boolean };
  status?: { phase?: string; podIP?: string; podIPs?: Array<{ ip?: string }>; conditions?: Array<{ type?: string; status?: string }> };
}

export interface KEndpointSlice {
  metadata?: KMeta;
  addressType?: string;
  endpoints?: Array<{ addresses?: string[]; conditions?: { ready?: boolean }; targetRef?: { kind?: string; name?: string; namespace?: string } }>;
  ports?: Array<{ name?: string; port?: number; protocol?: string }>;
}

export interface KEndpoints {
  metadata?: KMeta;
  subsets?: Array<{
    addresses?: Array<{ ip?: string; targetRef?: { kind?: string; name?: string } }>;
    notReadyAddresses?: Array<{ ip?: string; targetRef?: { kind?: string; name?: string } }>;
    ports?: Array<{ name?: string; port?: number; protocol?: string }>;
  }>;
}

export interface KNamespace {
  metadata?: KMeta;
}

export type RegistryProtocol = ServicePort['protocol'];

const ISTIO_PROTOCOLS: Record<string, RegistryProtocol> = {
  http: 'HTTP',
  http2: 'HTTP2',
  https: 'HTTPS',
  grpc: 'GRPC',
  // Istio treats gRPC-Web as HTTP; Tern has no separate protocol for it.
  'grpc-web': 'HTTP',
  tcp: 'TCP',
  tls: 'TLS',
  mongo: 'MONGO',
  // Istio's Redis and MySQL filters are off by default: plain TCP.
  redis: 'TCP',
  mysql: 'TCP',
  'kubernetes.io/h2c': 'HTTP2',
  'kubernetes.io/ws': 'HTTP',
  'kubernetes.io/wss': 'HTTPS',
};

/**
 * A Service port's protocol the way Istio reads it: `appProtocol` first, then the port name's
 * prefix (`http`, `http-web`, `grpc-api`, `grpc-web-x`…). undefined: not meshed (UDP, SCTP).
 * A port that says nothing is TCP: Tern does not sniff protocols.
 */
export function portProtocol(p: { name?: string | undefined; protocol?: string | undefined; appProtocol?: string | undefined }): RegistryProtocol | undefined {
  const l4 = (p.protocol ?? 'TCP').toUpperCase();
  if (l4 !== 'TCP') return undefined;
  const app = p.appProtocol?.toLowerCase();
  if (app && ISTIO_PROTOCOLS[app]) return ISTIO_PROTOCOLS[app];
  const name = (p.name ?? '').toLowerCase();
  if (name.startsWith('grpc-web')) return 'HTTP';
  const prefix = name.split('-')[0]!;
  return ISTIO_PROTOCOLS[prefix] ?? 'TCP';
}

const labelsOf = (m: KMeta | undefined): Labels => ({ ...(m?.labels ?? {}) });

/** One Service -> one registry service; undefined when it has nothing Tern can route (ExternalName, only UDP ports). */
export function serviceSpecFrom(svc: KService): ServiceSpec | undefined {
  const name = svc.metadata?.name;
  const namespace = svc.metadata?.namespace;
  if (!name || !namespace || svc.spec?.type === 'ExternalName') return undefined;
  const ports: ServicePort[] = [];
  for (const p of svc.spec?.ports ?? []) {
    const protocol = portProtocol(p);
    if (!protocol || !Number.isInteger(p.port)) continue;
    ports.push({
      ...(p.name ? { name: p.name } : {}),
      number: p.port,
      protocol,
      // A named target port differs per pod: it goes into each workload's port map instead.
      ...(typeof p.targetPort === 'number' && p.targetPort !== p.port ? { targetPort: p.targetPort } : {}),
    });
  }
  if (ports.length === 0) return undefined;
  // The registry's service labels are its workload selector (policy/mesh-model.ts backsService).
  return { namespace, name, ports, labels: { ...(svc.spec?.selector ?? {}) } };
}

export function hasSidecar(pod: KPod): boolean {
  const named = (c: KContainer) => c.name === SIDECAR_CONTAINER;
  // A native sidecar is an init container that keeps running.
  return (pod.spec?.containers ?? []).some(named) || (pod.spec?.initContainers ?? []).some((c) => named(c) && c.restartPolicy === 'Always');
}

export function podReady(pod: KPod): boolean {
  if (pod.metadata?.deletionTimestamp) return false;
  if (pod.status?.phase !== 'Running') return false;
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

export function podAddresses(pod: KPod): string[] {
  const ips = (pod.status?.podIPs ?? []).map((p) => p.ip).filter((ip): ip is string => Boolean(ip));
  if (ips.length === 0 && pod.status?.podIP) ips.push(pod.status.podIP);
  return [...new Set(ips)];
}

/** Port numbers the endpoints controller resolved, per service / pod / service port name. */
export type EndpointPorts = Map<string, Map<string, number>>; // `${ns}/${service}/${pod}` -> port name -> number

const epKey = (ns: string, service: string, pod: string) => `${ns}/${service}/${pod}`;

export function endpointPortsFromSlices(slices: Iterable<KEndpointSlice>): EndpointPorts {
  const out: EndpointPorts = new Map();
  for (const s of slices) {
    const ns = s.metadata?.namespace;
    const service = s.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (!ns || !service) continue;
    for (const e of s.endpoints ?? []) {
      if (e.targetRef?.kind !== 'Pod' || !e.targetRef.name) continue;
      const m = out.get(epKey(ns, service, e.targetRef.name)) ?? new Map<string, number>();
      for (const p of s.ports ?? []) if (typeof p.port === 'number') m.set(p.name ?? '', p.port);
      out.set(epKey(ns, service, e.targetRef.name), m);
    }
  }
  return out;
}

export function endpointPortsFromEndpoints(eps: Iterable<KEndpoints>): EndpointPorts {
  const out: EndpointPorts = new Map();
  for (const e of eps) {
    const ns = e.metadata?.namespace;
    const service = e.metadata?.name;
    if (!ns || !service) continue;
    for (const subset of e.subsets ?? []) {
      for (const a of [...(subset.addresses ?? []), ...(subset.notReadyAddresses ?? [])]) {
        if (a.targetRef?.kind !== 'Pod' || !a.targetRef.name) continue;
        const m = out.get(epKey(ns, service, a.targetRef.name)) ?? new Map<string, number>();
        for (const p of subset.ports ?? []) if (typeof p.port === 'number') m.set(p.name ?? '', p.port);
        out.set(epKey(ns, service, a.targetRef.name), m);
      }
    }
  }
  return out;
}

function selects(selector: Labels, labels: Labels): boolean {
  const keys = Object.keys(selector);
  return keys.length > 0 && keys.every((k) => labels[k] === selector[k]);
}

/**
 * Where this pod receives each port of the Services selecting it, when that is not what the
 * registry service already says (its targetPort, else the port): from the endpoints controller's
 * resolution when there is one, else from the Service's target port (a name looked up among the
 * pod's container ports).
 */
export function podPortMap(pod: KPod, services: readonly KService[], endpointPorts: EndpointPorts): Record<string, number> {
  const ns = pod.metadata?.namespace ?? '';
  const name = pod.metadata?.name ?? '';
  const labels = labelsOf(pod.metadata);
  const containerPorts = new Map<string, number>();
  for (const c of pod.spec?.containers ?? []) for (const p of c.ports ?? []) if (p.name) containerPorts.set(p.name, p.containerPort);
  const out: Record<string, number> = {};
  const sorted = [...services].sort((a, b) => ((a.metadata?.name ?? '') < (b.metadata?.name ?? '') ? -1 : 1));
  for (const svc of sorted) {
    if (svc.metadata?.namespace !== ns || !selects(svc.spec?.selector ?? {}, labels)) continue;
    const resolved = endpointPorts.get(epKey(ns, svc.metadata.name ?? '', name));
    for (const p of svc.spec?.ports ?? []) {
      if (!portProtocol(p)) continue;
      const key = String(p.port);
      if (key in out) continue; // two Services on one port number: the first by name wins
      const fallback = typeof p.targetPort === 'number' ? p.targetPort : p.port;
      let actual = resolved?.get(p.name ?? '');
      if (actual === undefined) {
        if (typeof p.targetPort === 'string' && /\D/.test(p.targetPort)) actual = containerPorts.get(p.targetPort);
        else if (typeof p.targetPort === 'string') actual = Number(p.targetPort);
      }
      if (actual !== undefined && actual !== fallback) out[key] = actual;
    }
  }
  return out;
}

/** One ready Pod -> one registry workload; undefined for pods that cannot take traffic. */
export function workloadSpecFrom(pod: KPod, services: readonly KService[], endpointPorts: EndpointPorts): WorkloadSpec | undefined {
  const name = pod.metadata?.name;
  const namespace = pod.metadata?.namespace;
  if (!name || !namespace || !podReady(pod)) return undefined;
  const addresses = podAddresses(pod);
  if (addresses.length === 0) return undefined;
  const labels = labelsOf(pod.metadata);
  // Auto mTLS keys off this label: claim it only when Tern's sidecar is really there.
  delete labels[TLS_MODE_LABEL];
  if (hasSidecar(pod)) labels[TLS_MODE_LABEL] = 'istio';
  return {
    namespace,
    name,
    labels,
    serviceAccount: pod.spec?.serviceAccountName || 'default',
    addresses,
    ports: podPortMap(pod, services, endpointPorts),
  };
}

export interface ClusterState {
  services: readonly KService[];
  pods: readonly KPod[];
  /** EndpointSlices, or (on clusters without discovery.k8s.io/v1) Endpoints. */
  endpointSlices?: readonly KEndpointSlice[];
  endpoints?: readonly KEndpoints[];
  namespaces?: readonly KNamespace[];
  /** Only namespaces whose labels include all of these (Istio's discoverySelectors, equality only). */
  namespaceSelector?: Labels | undefined;
}

export interface DesiredRegistry {
  services: ServiceSpec[];
  workloads: WorkloadSpec[];
}

const byKey = <T extends { namespace: string; name: string }>(a: T, b: T) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1);

export function desiredRegistry(state: ClusterState): DesiredRegistry {
  let inScope = (_ns: string | undefined) => true;
  if (state.namespaceSelector && Object.keys(state.namespaceSelector).length > 0) {
    const sel = state.namespaceSelector;
    const allowed = new Set((state.namespaces ?? []).filter((n) => selects(sel, labelsOf(n.metadata))).map((n) => n.metadata?.name));
    inScope = (ns) => ns !== undefined && allowed.has(ns);
  }
  const services = state.services.filter((s) => inScope(s.metadata?.namespace));
  const endpointPorts = state.endpointSlices ? endpointPortsFromSlices(state.endpointSlices) : endpointPortsFromEndpoints(state.endpoints ?? []);
  const out: DesiredRegistry = { services: [], workloads: [] };
  for (const s of services) {
    const spec = serviceSpecFrom(s);
    if (spec) out.services.push(spec);
  }
  for (const p of state.pods) {
    if (!inScope(p.metadata?.namespace)) continue;
    const spec = workloadSpecFrom(p, services, endpointPorts);
    if (spec) out.workloads.push(spec);
  }
  out.services.sort(byKey);
  out.workloads.sort(byKey);
  return out;
}

/** The namespace asks for sidecar injection: the same rule as the injector (kube/inject/mutate.ts). */
export function namespaceInjectionEnabled(ns: KNamespace): boolean {
  const l = ns.metadata?.labels ?? {};
  return l['tern-injection'] === 'enabled' || l['istio-injection'] === 'enabled';
}
