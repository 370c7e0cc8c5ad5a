import type { Scope } from '../policy/mesh-model.ts';
import type { DrEntry, MeshModel, PortModel, ServiceModel, VsEntry } from './model.ts';

// Which service hosts compile differently in one revision than in another: a host whose services,
// VirtualServices or DestinationRules differ. Everything a proxy gets for a host in its scope is
// decided by these three lists (and by the hosts they name, which are in the scope too: see
// scopeFor's closure), so a proxy whose scope is unchanged and holds none of these hosts compiles
// to the same output. Comparisons lean on row identity (the snapshot keeps unchanged rows as the
// same objects) and err towards "changed".

function sameScope(a: Scope, b: Scope): boolean {
  if (a === 'all' || b === 'all') return a === b;
  if (a.size !== b.size) return false;
  for (const n of a) if (!b.has(n)) return false;
  return true;
}

function samePorts(a: readonly PortModel[], b: readonly PortModel[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  return a.every((p, i) => {
    const q = b[i]!;
    return p.number === q.number && p.name === q.name && p.protocol === q.protocol && p.targetPort === q.targetPort && p.http === q.http && p.h2 === q.h2;
  });
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x === b[i]));
}

function sameJson(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

export function sameService(a: ServiceModel, b: ServiceModel): boolean {
  return (
    a.id === b.id &&
    a.host === b.host &&
    a.namespace === b.namespace &&
    a.name === b.name &&
    a.kind === b.kind &&
    a.isDefaultHost === b.isDefaultHost &&
    a.resolution === b.resolution &&
    a.location === b.location &&
    a.seHasSelector === b.seHasSelector &&
    sameScope(a.scope, b.scope) &&
    samePorts(a.ports, b.ports) &&
    // Workload rows: the same objects unless the row was re-read (then maybe changed).
    sameItems(a.workloads, b.workloads) &&
    sameJson(a.seEndpoints, b.seEndpoints) &&
    sameItems(a.seSubjectAltNames, b.seSubjectAltNames)
  );
}

function samePolicy(a: VsEntry | DrEntry, b: VsEntry | DrEntry): boolean {
  return a.namespace === b.namespace && a.name === b.name && a.order === b.order && sameScope(a.scope, b.scope) && sameJson(a.spec, b.spec);
}

function sameVs(a: VsEntry, b: VsEntry): boolean {
  return samePolicy(a, b) && a.mesh === b.mesh && sameItems(a.hosts, b.hosts);
}

function sameDr(a: DrEntry, b: DrEntry): boolean {
  return samePolicy(a, b) && a.host === b.host && sameJson(a.selector, b.selector);
}

function sameList<T>(a: readonly T[], b: readonly T[], eq: (x: T, y: T) => boolean): boolean {
  return a.length === b.length && a.every((x, i) => eq(x, b[i]!));
}

/** Hosts (of either revision) whose services, VirtualServices or DestinationRules differ. */
export function changedHosts(prev: MeshModel, next: MeshModel): Set<string> {
  const out = new Set<string>();
  const hosts = new Set<string>();
  for (const [h] of prev.hostEntries()) hosts.add(h);
  for (const [h] of next.hostEntries()) hosts.add(h);
  const prevServices = new Map(prev.hostEntries());
  const nextServices = new Map(next.hostEntries());
  for (const h of hosts) {
    const a = prevServices.get(h) ?? [];
    const b = nextServices.get(h) ?? [];
    if (!sameList(a, b, sameService) || !sameList(prev.virtualServicesOfHost(h), next.virtualServicesOfHost(h), sameVs) || !sameList(prev.destinationRulesOfHost(h), next.destinationRulesOfHost(h), sameDr)) {
      out.add(h);
    }
  }
  return out;
}
