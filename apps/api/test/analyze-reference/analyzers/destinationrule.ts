import { arr, exportScope, formatLabels, labelsOf, scopesOverlap, selects, str, type MeshIndex, type Reporter } from './context.ts';
import type { ServiceRecord } from '@tern/shared';
import type { DestinationRuleSpecView, Res } from './model.ts';

// DestinationRule checks: TRN0201 unknown host, TRN0202 subset selecting no workload,
// TRN0203 / TRN0204 several DestinationRules for one host.

export function checkDestinationRules(mesh: MeshIndex, rep: Reporter): void {
  for (const dr of mesh.destinationRules) {
    const raw = str(dr.spec.host);
    if (!raw) continue;
    const host = mesh.resolve(raw, dr.namespace);
    if (host.includes('*')) continue; // wildcard rules are defaults for whatever they match
    const owner = mesh.ownerOf(host, dr.namespace);
    if (!owner) {
      rep.report(
        'TRN0201',
        dr,
        'spec.host',
        `host "${raw}" (${host}) matches no registry service and no ServiceEntry visible in namespace "${dr.namespace}"; the rule has no effect`,
      );
      continue;
    }
    if (owner.kind === 'service') checkSubsetWorkloads(mesh, rep, dr, host, owner.services);
  }
  checkDuplicates(mesh, rep);
}

/**
 * Subset labels select among the service's endpoints. When the registry lets us tell which workloads
 * back the service (see MeshIndex.workloadsOf) the labels are matched against those; otherwise
 * against every workload in the service's namespace.
 */
function checkSubsetWorkloads(
  mesh: MeshIndex,
  rep: Reporter,
  dr: Res<DestinationRuleSpecView>,
  host: string,
  services: readonly ServiceRecord[],
): void {
  const members = services.flatMap((s) => mesh.workloadsOf(s));
  const nss = [...new Set(services.map((s) => s.namespace))].sort();
  const candidates = members.length > 0 ? members : nss.flatMap((ns) => mesh.workloadsIn(ns));
  const where =
    members.length > 0
      ? `no workload of service ${services.map((s) => `${s.namespace}/${s.name}`).join(', ')}`
      : `no workload in namespace ${nss.map((n) => `"${n}"`).join(', ')}`;
  arr(dr.spec.subsets).forEach((subset, i) => {
    if (!subset || typeof subset !== 'object') return;
    const labels = labelsOf(subset.labels);
    if (Object.keys(labels).length === 0) return; // no labels: the subset is every endpoint of the host
    if (candidates.some((w) => selects(labels, labelsOf(w.labels)))) return;
    rep.report(
      'TRN0202',
      dr,
      `spec.subsets[${i}].labels`,
      `subset "${str(subset.name) ?? `#${i}`}" of host ${host} selects labels {${formatLabels(labels)}}, ` +
        `but ${where} carries them; traffic routed to it has no endpoints`,
    );
  });
}

function selectorKey(dr: Res<DestinationRuleSpecView>): string {
  const labels = labelsOf(dr.spec.workloadSelector?.matchLabels);
  return formatLabels(labels);
}

/**
 * Istio merges DestinationRules for one host only within a namespace (and only those without
 * workloadSelector, or with the same one): the oldest rule's traffic policy wins and a subset name
 * defined twice keeps only its first definition. Across namespaces the client's namespace takes
 * precedence, so rules there are not compared.
 */
function checkDuplicates(mesh: MeshIndex, rep: Reporter): void {
  const groups = new Map<string, Array<Res<DestinationRuleSpecView>>>();
  for (const dr of mesh.destinationRules) {
    const raw = str(dr.spec.host);
    if (!raw) continue;
    const key = `${dr.namespace}\u0000${mesh.resolve(raw, dr.namespace)}\u0000${selectorKey(dr)}`;
    const list = groups.get(key);
    if (list) list.push(dr);
    else groups.set(key, [dr]);
  }
  for (const rules of groups.values()) {
    if (rules.length < 2) continue;
    for (const dr of rules) {
      const host = mesh.resolve(dr.spec.host as string, dr.namespace);
      const scope = exportScope(dr.spec.exportTo, dr.namespace);
      const others = rules.filter((o) => o !== dr && scopesOverlap(scope, exportScope(o.spec.exportTo, o.namespace)));
      if (others.length === 0) continue;
      const subsetNames = (r: Res<DestinationRuleSpecView>): Set<string> =>
        new Set(arr(r.spec.subsets).flatMap((s) => (s && typeof s === 'object' && str(s.name) ? [s.name as string] : [])));
      const clashing = new Set<Res<DestinationRuleSpecView>>();
      arr(dr.spec.subsets).forEach((s, i) => {
        const name = s && typeof s === 'object' ? str(s.name) : undefined;
        if (!name) return;
        const dups = others.filter((o) => subsetNames(o).has(name));
        if (dups.length === 0) return;
        for (const d of dups) clashing.add(d);
        rep.report(
          'TRN0203',
          dr,
          `spec.subsets[${i}].name`,
          `subset "${name}" of host ${host} is also defined by DestinationRule ` +
            `${dups.map((d) => `${d.namespace}/${d.name}`).sort().join(', ')} (this one is ${dr.namespace}/${dr.name}); only one definition takes effect`,
        );
      });
      const rest = others.filter((o) => !clashing.has(o));
      if (rest.length === 0) continue;
      rep.report(
        'TRN0204',
        dr,
        'spec.host',
        `host ${host} also has DestinationRule ${rest.map((d) => `${d.namespace}/${d.name}`).sort().join(', ')} ` +
          `in namespace "${dr.namespace}" (this one is ${dr.namespace}/${dr.name}); Istio merges only their subsets and keeps the oldest ` +
          `trafficPolicy — combine them into one DestinationRule`,
      );
    }
  }
}
