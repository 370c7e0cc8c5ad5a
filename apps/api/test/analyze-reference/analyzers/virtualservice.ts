import {
  arr,
  exportScope,
  hostMatches,
  scopeIncludes,
  scopesOverlap,
  str,
  type MeshIndex,
  type Reporter,
  type Scope,
} from './context.ts';
import type { DestinationView, Res, RouteDestinationView, VirtualServiceSpecView } from './model.ts';

// VirtualService checks: TRN0101 destination host, TRN0102 destination subset, TRN0103 weights,
// TRN0104 conflicting mesh hosts, TRN0105 VirtualService host, TRN0106 destination port.

interface DestinationRef {
  destination: DestinationView;
  /** Path of the destination object, e.g. `spec.http[0].route[1].destination` or `spec.http[0].mirror`. */
  path: string;
  /** "route" or "mirror", for messages. */
  role: 'route' | 'mirror';
}

/** Runtime guard for resources that did not come through the schema; keeps the static type. */
function isObject<T>(x: T | null | undefined): x is T {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

export function destinationsOf(spec: VirtualServiceSpecView): DestinationRef[] {
  const out: DestinationRef[] = [];
  arr(spec.http).forEach((http, i) => {
    if (!isObject(http)) return;
    arr(http.route).forEach((rd, j) => {
      if (isObject(rd) && isObject(rd.destination))
        out.push({ destination: rd.destination, path: `spec.http[${i}].route[${j}].destination`, role: 'route' });
    });
    if (isObject(http.mirror)) out.push({ destination: http.mirror, path: `spec.http[${i}].mirror`, role: 'mirror' });
    arr(http.mirrors).forEach((m, k) => {
      if (isObject(m) && isObject(m.destination))
        out.push({ destination: m.destination, path: `spec.http[${i}].mirrors[${k}].destination`, role: 'mirror' });
    });
  });
  for (const section of ['tcp', 'tls'] as const) {
    arr(spec[section]).forEach((r, i) => {
      if (!isObject(r)) return;
      arr(r.route).forEach((rd, j) => {
        if (isObject(rd) && isObject(rd.destination))
          out.push({ destination: rd.destination, path: `spec.${section}[${i}].route[${j}].destination`, role: 'route' });
      });
    });
  }
  return out;
}

/** A VirtualService applies to sidecars when `gateways` is empty or names the reserved "mesh". */
export function isMeshBound(spec: VirtualServiceSpecView): boolean {
  const gateways = arr(spec.gateways);
  return gateways.length === 0 || gateways.includes('mesh');
}

export function checkVirtualServices(mesh: MeshIndex, rep: Reporter): void {
  // Subsets defined per DestinationRule, with host pattern and visibility, for TRN0102.
  const drSubsets = mesh.destinationRules.map((dr) => ({
    host: str(dr.spec.host) ? mesh.resolve(dr.spec.host as string, dr.namespace) : undefined,
    scope: exportScope(dr.spec.exportTo, dr.namespace),
    subsets: new Set(arr(dr.spec.subsets).map((s) => (isObject(s) ? str(s.name) : undefined))),
  }));

  for (const vs of mesh.virtualServices) {
    for (const ref of destinationsOf(vs.spec)) checkDestination(mesh, rep, vs, ref, drSubsets);
    checkWeights(rep, vs);
    checkOwnHosts(mesh, rep, vs);
  }
  checkConflictingHosts(mesh, rep);
}

function checkDestination(
  mesh: MeshIndex,
  rep: Reporter,
  vs: Res<VirtualServiceSpecView>,
  ref: DestinationRef,
  drSubsets: ReadonlyArray<{ host: string | undefined; scope: Scope; subsets: ReadonlySet<string | undefined> }>,
): void {
  const rawHost = str(ref.destination.host);
  if (!rawHost || rawHost.includes('*')) return; // missing host is the schema's business
  const host = mesh.resolve(rawHost, vs.namespace);
  const owner = mesh.ownerOf(host, vs.namespace);

  if (!owner) {
    rep.report(
      'TRN0101',
      vs,
      `${ref.path}.host`,
      `${ref.role} destination host "${rawHost}" (${host}) matches no registry service and no ServiceEntry visible in namespace "${vs.namespace}"`,
    );
  }

  const subset = str(ref.destination.subset);
  if (subset) {
    const defined = drSubsets.some(
      (d) => d.host !== undefined && scopeIncludes(d.scope, vs.namespace) && hostMatches(d.host, host) && d.subsets.has(subset),
    );
    if (!defined) {
      rep.report(
        'TRN0102',
        vs,
        `${ref.path}.subset`,
        `subset "${subset}" of host ${host} is not defined in any DestinationRule visible in namespace "${vs.namespace}"; ` +
          (ref.role === 'mirror' ? 'mirrored requests are dropped' : 'requests routed to it fail with 503 (no healthy upstream)'),
      );
    }
  }

  const port = ref.destination.port?.number;
  if (owner && typeof port === 'number') {
    const ports =
      owner.kind === 'service'
        ? owner.services.flatMap((s) => arr(s.ports).map((p) => p.number))
        : owner.entries.flatMap((e) => arr(e.spec.ports).map((p) => p.number));
    // A ServiceEntry without ports (or a malformed record) gives nothing to compare against.
    if (ports.length > 0 && !ports.includes(port)) {
      const what = owner.kind === 'service' ? 'service' : 'ServiceEntry';
      const exposed = [...new Set(ports.filter((p): p is number => typeof p === 'number'))].sort((a, b) => a - b);
      rep.report(
        'TRN0106',
        vs,
        `${ref.path}.port.number`,
        `port ${port} is not exposed by ${what} ${host} (exposed: ${exposed.join(', ')})`,
      );
    }
  }
}

function checkWeights(rep: Reporter, vs: Res<VirtualServiceSpecView>): void {
  for (const section of ['http', 'tcp', 'tls'] as const) {
    arr(vs.spec[section]).forEach((r, i) => {
      if (!isObject(r)) return;
      const routes = arr<RouteDestinationView>(r.route).filter((rd) => isObject(rd));
      if (routes.length < 2) return; // a single destination receives all traffic whatever its weight
      const weights = routes.map((rd) => (typeof rd.weight === 'number' ? rd.weight : 0));
      const sum = weights.reduce((a, b) => a + b, 0);
      if (sum === 100) return;
      const parts = routes.map((rd, j) => {
        const d = rd.destination;
        const name = d ? `${str(d.host) ?? '?'}${str(d.subset) ? `/${d.subset}` : ''}` : '?';
        return `${name}=${weights[j]}`;
      });
      rep.report(
        'TRN0103',
        vs,
        `spec.${section}[${i}].route`,
        `weights of the ${routes.length} destinations sum to ${sum}, not 100 (${parts.join(', ')})`,
      );
    });
  }
}

/** TRN0105: a sidecar-bound host that looks cluster-internal but resolves nowhere. */
function checkOwnHosts(mesh: MeshIndex, rep: Reporter, vs: Res<VirtualServiceSpecView>): void {
  if (!isMeshBound(vs.spec)) return; // gateway hosts are external names: nothing to resolve them against
  arr(vs.spec.hosts).forEach((raw, i) => {
    const h = str(raw);
    if (!h || h.includes('*')) return;
    const host = mesh.resolve(h, vs.namespace);
    const internal = !h.includes('.') || host.endsWith(`.svc.${mesh.domainSuffix}`);
    if (!internal || mesh.ownerOf(host, vs.namespace)) return;
    rep.report(
      'TRN0105',
      vs,
      `spec.hosts[${i}]`,
      `host "${h}" resolves to ${host}, which matches no registry service and no ServiceEntry; sidecars will not apply these routes`,
    );
  });
}

/** TRN0104: several mesh-bound VirtualServices for one host with overlapping exportTo. */
function checkConflictingHosts(mesh: MeshIndex, rep: Reporter): void {
  interface Claim {
    vs: Res<VirtualServiceSpecView>;
    index: number;
    scope: Scope;
  }
  const byHost = new Map<string, Claim[]>();
  for (const vs of mesh.virtualServices) {
    if (!isMeshBound(vs.spec)) continue;
    const scope = exportScope(vs.spec.exportTo, vs.namespace);
    const seen = new Set<string>();
    arr(vs.spec.hosts).forEach((raw, index) => {
      const h = str(raw);
      if (!h) return;
      const host = mesh.resolve(h, vs.namespace);
      if (seen.has(host)) return;
      seen.add(host);
      const list = byHost.get(host);
      if (list) list.push({ vs, index, scope });
      else byHost.set(host, [{ vs, index, scope }]);
    });
  }
  for (const [host, claims] of byHost) {
    if (claims.length < 2) continue;
    for (const c of claims) {
      const others = claims.filter((o) => o !== c && o.vs !== c.vs && scopesOverlap(c.scope, o.scope));
      if (others.length === 0) continue;
      const names = others.map((o) => `${o.vs.namespace}/${o.vs.name}`).sort();
      rep.report(
        'TRN0104',
        c.vs,
        `spec.hosts[${c.index}]`,
        `host ${host} is also claimed for sidecars by ${others.length === 1 ? 'VirtualService' : 'VirtualServices'} ` +
          `${names.join(', ')} (this one is ${c.vs.namespace}/${c.vs.name}); which routes apply is undefined — merge them into one VirtualService`,
      );
    }
  }
}
