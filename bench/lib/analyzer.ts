import type { AnalyzeFn } from '../../apps/api/src/store/writer.ts';
import { analysisInput } from '../../apps/api/src/store/snapshot.ts';
import { destinationRule, namespaceOf, serviceName, virtualService } from './mesh.ts';
import { median, now } from './stats.ts';

// analyze() alone, on the benchmark mesh built in memory (no database), with one ingredient taken
// out at a time: shows which checks grow faster than the mesh.

export interface Variant {
  label: string;
  vs: boolean;
  dr: boolean;
  workloads: boolean;
  subsets: boolean;
}

export const VARIANTS: Variant[] = [
  { label: 'whole mesh', vs: true, dr: true, workloads: true, subsets: true },
  { label: 'VirtualServices route to no subset', vs: true, dr: true, workloads: true, subsets: false },
  { label: 'no DestinationRules', vs: true, dr: false, workloads: true, subsets: true },
  { label: 'no VirtualServices', vs: false, dr: true, workloads: true, subsets: true },
  { label: 'no VirtualServices, no workloads', vs: false, dr: true, workloads: false, subsets: true },
];

function meshInput(domainSuffix: string, n: number, v: Variant) {
  const resources = new Map();
  const services = new Map();
  const workloads = new Map();
  const at = new Date(0);
  for (let i = 0; i < n; i++) {
    const ns = namespaceOf(i);
    const name = serviceName(i);
    const row = (o: { apiVersion: string; kind: string; spec: Record<string, unknown> }) => ({
      kind: o.kind, namespace: ns, name, apiVersion: o.apiVersion, uid: '', labels: {}, annotations: {}, spec: o.spec,
      generation: 1, resourceVersion: 1n, diagnostics: [], createdAt: at, updatedAt: at, createdBy: '', updatedBy: '',
    });
    if (v.dr) resources.set(`DestinationRule/${ns}/${name}`, row(destinationRule(i)));
    if (v.vs) {
      const o = virtualService(i, 50);
      if (!v.subsets) for (const r of o.spec.http[0]!.route) delete (r.destination as { subset?: string }).subset;
      resources.set(`VirtualService/${ns}/${name}`, row(o));
    }
    services.set(`${ns}/${name}`, { namespace: ns, name, hosts: [`${name}.${ns}.svc.${domainSuffix}`], ports: [{ number: 8080, protocol: 'HTTP', name: 'http' }], labels: {}, source: 'local', resourceVersion: 1n });
    if (v.workloads) {
      for (const ver of ['v1', 'v2']) {
        workloads.set(`${ns}/${name}-${ver}`, { namespace: ns, name: `${name}-${ver}`, labels: { app: name, version: ver }, serviceAccount: name, addresses: [], source: 'local', resourceVersion: 1n });
      }
    }
  }
  return analysisInput({ resources, services, workloads });
}

/** Median analyze() time (ms) per variant and size. */
export function analyzerScaling(analyze: AnalyzeFn, domainSuffix: string, sizes: number[], reps: number): Array<{ label: string; ms: number[] }> {
  return VARIANTS.map((v) => ({
    label: v.label,
    ms: sizes.map((n) => {
      const input = meshInput(domainSuffix, n, v);
      analyze(input); // warm
      const t: number[] = [];
      for (let r = 0; r < reps; r++) {
        const s = now();
        analyze(input);
        t.push(now() - s);
      }
      return median(t);
    }),
  }));
}
