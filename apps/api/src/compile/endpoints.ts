import { TLS_MODE_LABEL } from '@tern/shared';
import type { JsonObject } from '@tern/xds';
import type { WorkloadRow } from '../store/snapshot.ts';
import { labelsOf, selects } from '../policy/mesh-model.ts';
import type { PortModel, ServiceModel } from './model.ts';
import { cmpStr, compact } from './util.ts';

// ClusterLoadAssignments: the workloads (or ServiceEntry endpoints) behind a cluster, grouped by
// locality. grpc-js-xds drops endpoints without a weighted locality, so every group has one.

interface Endpoint {
  address: string;
  port: number;
  weight: number | undefined;
  locality: string;
  labels: Record<string, string>;
  workload: string | undefined;
  sidecar: boolean;
}

/** Istio's `istio.workload` metadata: `<workload>;<namespace>;<app>;<version>;<cluster>`. */
function workloadMetadata(w: WorkloadRow, clusterId: string): string {
  const labels = labelsOf(w.labels);
  const app = labels['app'] ?? labels['app.kubernetes.io/name'] ?? '';
  const version = labels['version'] ?? labels['app.kubernetes.io/version'] ?? '';
  return `${w.name};${w.namespace};${app};${version};${clusterId}`;
}

/** The port a workload receives a service port on: its own mapping, else the target port, else the port. */
export function workloadPort(w: WorkloadRow, port: PortModel): number {
  return w.ports?.[String(port.number)] ?? port.targetPort ?? port.number;
}

/** Whether a workload's sidecar takes mTLS on the port it receives a service port on (PeerAuthentication not DISABLE). */
export type AcceptsMtls = (w: WorkloadRow, port: number) => boolean;

function endpointsOf(svc: ServiceModel, port: PortModel, subsetLabels: Record<string, string> | undefined, clusterId: string, acceptsMtls?: AcceptsMtls): Endpoint[] {
  const out: Endpoint[] = [];
  const fromWorkloads = svc.kind === 'service' || svc.seHasSelector;
  if (fromWorkloads) {
    for (const w of svc.workloads) {
      const labels = labelsOf(w.labels);
      if (subsetLabels && !selects(subsetLabels, labels)) continue;
      const p = workloadPort(w, port);
      // Istio's rule: a workload runs a sidecar when it carries the label its injector sets (an app
      // registered on its own port has none, and gets plain text).
      const sidecar = labels[TLS_MODE_LABEL] === 'istio' && (acceptsMtls ? acceptsMtls(w, p) : true);
      for (const address of w.addresses) {
        out.push({ address, port: p, weight: undefined, locality: '', labels, workload: workloadMetadata(w, clusterId), sidecar });
      }
    }
  } else {
    for (const e of svc.seEndpoints) {
      const labels = labelsOf(e.labels);
      if (subsetLabels && !selects(subsetLabels, labels)) continue;
      if (!e.address || e.address.startsWith('unix://')) continue;
      const p = e.ports?.[port.name] ?? port.targetPort ?? port.number;
      out.push({ address: e.address, port: p, weight: e.weight || undefined, locality: e.locality ?? '', labels, workload: undefined, sidecar: labels[TLS_MODE_LABEL] === 'istio' });
    }
  }
  return out.sort((a, b) => cmpStr(`${a.locality}|${a.address}|${a.port}`, `${b.locality}|${b.address}|${b.port}`));
}

function locality(text: string): JsonObject {
  const [region = '', zone = '', sub_zone = ''] = text.split('/');
  return { region, zone, sub_zone };
}

function lbEndpoint(e: Endpoint, subsetLabels: Record<string, string> | undefined, mtls: boolean): JsonObject {
  const filterMetadata: JsonObject = {};
  if (e.workload) filterMetadata['istio'] = { workload: e.workload };
  if (subsetLabels && Object.keys(subsetLabels).length > 0) filterMetadata['envoy.lb'] = { ...subsetLabels };
  if (mtls && e.sidecar) filterMetadata['envoy.transport_socket_match'] = { tlsMode: 'istio' };
  return compact({
    endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
    health_status: 'HEALTHY',
    load_balancing_weight: e.weight,
    metadata: Object.keys(filterMetadata).length > 0 ? { filter_metadata: filterMetadata } : undefined,
  });
}

function byLocality(endpoints: Endpoint[], subsetLabels: Record<string, string> | undefined, mtls: boolean): JsonObject[] {
  const groups = new Map<string, Endpoint[]>();
  for (const e of endpoints) (groups.get(e.locality) ?? groups.set(e.locality, []).get(e.locality)!).push(e);
  return [...groups.keys()].sort().map((loc) => ({
    locality: locality(loc),
    lb_endpoints: groups.get(loc)!.map((e) => lbEndpoint(e, subsetLabels, mtls)),
    load_balancing_weight: 1,
  }));
}

/** `acceptsMtls` (with `mtls`): registry endpoints whose sidecar is DISABLE get no `tlsMode: istio`. */
export function clusterLoadAssignment(name: string, svc: ServiceModel, port: PortModel, subsetLabels: Record<string, string> | undefined, clusterId: string, mtls: boolean, acceptsMtls?: AcceptsMtls): JsonObject {
  const eps = endpointsOf(svc, port, subsetLabels, clusterId, mtls ? acceptsMtls : undefined);
  return { cluster_name: name, endpoints: byLocality(eps, subsetLabels, mtls) };
}

/** For DNS clusters: the endpoints Envoy resolves itself (the ServiceEntry's, else its host). */
export function dnsLoadAssignment(name: string, svc: ServiceModel, port: PortModel, subsetLabels: Record<string, string> | undefined, clusterId: string): JsonObject {
  let eps = endpointsOf(svc, port, subsetLabels, clusterId);
  if (eps.length === 0 && svc.seEndpoints.length === 0 && !svc.host.includes('*')) {
    eps = [{ address: svc.host, port: port.targetPort ?? port.number, weight: undefined, locality: '', labels: {}, workload: undefined, sidecar: false }];
  }
  if (svc.resolution === 'DNS_ROUND_ROBIN') eps = eps.slice(0, 1); // LOGICAL_DNS takes exactly one
  return { cluster_name: name, endpoints: byLocality(eps, subsetLabels, false) };
}
