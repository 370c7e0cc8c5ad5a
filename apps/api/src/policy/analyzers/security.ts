import { TLS_MODE_LABEL } from '@tern/shared';
import {
  arr,
  formatLabels,
  labelsOf,
  selects,
  str,
  type MeshIndex,
  type Reporter,
} from './context.ts';
import type { ClientTLSView, DestinationRuleSpecView, PeerAuthenticationSpecView, Res, SubsetView, TrafficPolicyView } from './model.ts';

// Security checks: TRN0301 DestinationRule TLS vs STRICT PeerAuthentication, TRN0302 / TRN0303
// AuthorizationPolicy sources naming nothing, TRN0304 selectors matching no workload, TRN0305 STRICT
// for workloads that clients do not know to run a sidecar.

export function checkSecurity(mesh: MeshIndex, rep: Reporter): void {
  checkMtlsConflicts(mesh, rep);
  checkAuthorizationSources(mesh, rep);
  checkSelectors(mesh, rep);
  checkStrictWithoutSidecar(mesh, rep);
}

// --- TRN0301 --------------------------------------------------------------------------------

interface EffectiveTls {
  mode: string;
  path: string;
}

function tlsMode(tls: ClientTLSView | undefined): string | undefined {
  if (!tls || typeof tls !== 'object') return undefined;
  // ClientTLSSettings.mode is an enum whose zero value is DISABLE: a tls block without mode disables TLS.
  return str(tls.mode) ?? 'DISABLE';
}

function portLevel(tp: TrafficPolicyView | undefined, port: number): { index: number; tls: ClientTLSView | undefined } | undefined {
  const list = arr(tp?.portLevelSettings);
  for (let k = 0; k < list.length; k++) {
    const p = list[k];
    if (p && typeof p === 'object' && p.port?.number === port) return { index: k, tls: p.tls };
  }
  return undefined;
}

/**
 * The client TLS mode sidecars use for one (subset, port) of a DestinationRule, with the path of the
 * field that decides it. Precedence as in Istio's cluster builder: subset port-level, subset,
 * rule port-level, rule. Undefined when nothing is set (auto mTLS).
 */
function effectiveTls(
  spec: DestinationRuleSpecView,
  subset: { index: number; view: SubsetView } | undefined,
  port: number,
): EffectiveTls | undefined {
  const candidates: Array<[ClientTLSView | undefined, string]> = [];
  if (subset) {
    const tp = subset.view.trafficPolicy;
    const base = `spec.subsets[${subset.index}].trafficPolicy`;
    const pl = portLevel(tp, port);
    if (pl) candidates.push([pl.tls, `${base}.portLevelSettings[${pl.index}].tls`]);
    candidates.push([tp?.tls, `${base}.tls`]);
  }
  const pl = portLevel(spec.trafficPolicy, port);
  if (pl) candidates.push([pl.tls, `spec.trafficPolicy.portLevelSettings[${pl.index}].tls`]);
  candidates.push([spec.trafficPolicy?.tls, 'spec.trafficPolicy.tls']);
  for (const [tls, path] of candidates) {
    const mode = tlsMode(tls);
    if (mode) return { mode, path: `${path}.mode` };
  }
  return undefined;
}

function policyScope(mesh: MeshIndex, p: Res<PeerAuthenticationSpecView>): string {
  if (Object.keys(labelsOf(p.spec.selector?.matchLabels)).length > 0) return 'workload-specific';
  return p.namespace === mesh.rootNamespace ? 'mesh-wide' : 'namespace-wide';
}

/**
 * Whether any client TLS setting of the rule (rule-level, subset, port-level) is DISABLE or SIMPLE.
 * effectiveTls only ever picks one of these settings, so a rule without any cannot conflict, and
 * skipping it spares matching its services and workloads against PeerAuthentications.
 */
function mayDisableMtls(spec: DestinationRuleSpecView): boolean {
  return (
    policyMayDisableMtls(spec.trafficPolicy) ||
    arr(spec.subsets).some((s) => !!s && typeof s === 'object' && policyMayDisableMtls(s.trafficPolicy))
  );
}

function policyMayDisableMtls(tp: TrafficPolicyView | undefined): boolean {
  return nonMutual(tp?.tls) || arr(tp?.portLevelSettings).some((p) => !!p && typeof p === 'object' && nonMutual(p.tls));
}

function nonMutual(tls: ClientTLSView | undefined): boolean {
  const mode = tlsMode(tls);
  return mode === 'DISABLE' || mode === 'SIMPLE';
}

function checkMtlsConflicts(mesh: MeshIndex, rep: Reporter): void {
  // Exact (non-wildcard) hosts that have their own DestinationRule: a wildcard rule yields to them.
  const exactRuleHosts = new Set<string>();
  for (const dr of mesh.destinationRules) {
    const raw = str(dr.spec.host);
    if (raw && !raw.includes('*')) exactRuleHosts.add(mesh.resolve(raw, dr.namespace));
  }

  for (const dr of mesh.destinationRules) {
    const raw = str(dr.spec.host);
    if (!raw || !mayDisableMtls(dr.spec)) continue;
    const pattern = mesh.resolve(raw, dr.namespace);
    const wildcard = pattern.includes('*');
    const subsets = arr(dr.spec.subsets).flatMap((view, index) => (view && typeof view === 'object' ? [{ index, view }] : []));
    const conflicts = new Map<string, { mode: string; targets: Set<string>; policies: Set<string> }>();

    for (const svc of mesh.servicesMatching(pattern)) {
      const svcHosts = mesh.hostsOf(svc);
      if (wildcard && svcHosts.some((h) => exactRuleHosts.has(h))) continue;
      const members = mesh.workloadsOf(svc);
      const host = wildcard ? (svcHosts[0] as string) : pattern;
      for (const port of arr(svc.ports)) {
        for (const ctx of [undefined, ...subsets]) {
          const eff = effectiveTls(dr.spec, ctx, port.number);
          if (!eff || (eff.mode !== 'DISABLE' && eff.mode !== 'SIMPLE')) continue;
          const subsetLabels = ctx ? labelsOf(ctx.view.labels) : {};
          const matched = members.filter((w) => selects(subsetLabels, labelsOf(w.labels)));
          // No known workload behind the service (or subset): judge by the labels the traffic would select.
          const targets = matched.length > 0 ? matched.map((w) => labelsOf(w.labels)) : [subsetLabels];
          const targetPort = port.targetPort ?? port.number;
          for (const labels of targets) {
            const pm = mesh.effectivePeerMode(svc.namespace, labels, targetPort);
            if (pm.mode !== 'STRICT' || !pm.policy) continue;
            let c = conflicts.get(eff.path);
            if (!c) conflicts.set(eff.path, (c = { mode: eff.mode, targets: new Set(), policies: new Set() }));
            // Name the subset only when the setting is the subset's own; a rule-level one covers them all.
            const subsetName = ctx && eff.path.startsWith('spec.subsets[') ? str(ctx.view.name) : undefined;
            c.targets.add(`${host}:${port.number}${subsetName ? ` (subset ${subsetName})` : ''}`);
            c.policies.add(`PeerAuthentication ${pm.policy.namespace}/${pm.policy.name} (${policyScope(mesh, pm.policy)})`);
          }
        }
      }
    }

    for (const [path, c] of [...conflicts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const what = c.mode === 'DISABLE' ? 'plaintext' : 'TLS without a client certificate';
      rep.report(
        'TRN0301',
        dr,
        path,
        `tls.mode ${c.mode} makes clients send ${what} to ${[...c.targets].sort().join(', ')}, but ` +
          `${[...c.policies].sort().join(' and ')} requires STRICT mTLS there, so those requests are rejected; ` +
          `use ISTIO_MUTUAL (or remove the tls setting) or relax the PeerAuthentication`,
      );
    }
  }
}

// --- TRN0302 / TRN0303 -----------------------------------------------------------------------

/** Splits an Istio principal into namespace and service-account patterns; undefined if not of that form. */
export function parsePrincipal(principal: string): { ns: string; sa: string } | undefined {
  const p = principal.startsWith('spiffe://') ? principal.slice('spiffe://'.length) : principal;
  const full = /^(?:[^/]*\/)?ns\/([^/]+)\/sa\/([^/]+)$/.exec(p);
  if (full) return { ns: full[1] as string, sa: full[2] as string };
  const nsOnly = /^(?:[^/]*\/)?ns\/([^/*]+)\/\*$/.exec(p);
  if (nsOnly) return { ns: nsOnly[1] as string, sa: '*' };
  return undefined;
}

function checkAuthorizationSources(mesh: MeshIndex, rep: Reporter): void {
  for (const ap of mesh.authorizationPolicies) {
    arr(ap.spec.rules).forEach((rule, i) => {
      if (!rule || typeof rule !== 'object') return;
      arr(rule.from).forEach((from, j) => {
        const source = from && typeof from === 'object' ? from.source : undefined;
        if (!source || typeof source !== 'object') return;
        const base = `spec.rules[${i}].from[${j}].source`;

        for (const field of ['namespaces', 'notNamespaces'] as const) {
          arr(source[field]).forEach((raw, k) => {
            const ns = str(raw);
            if (!ns || ns === '*') return;
            if (mesh.someNamespaceMatches(ns)) return;
            rep.report(
              'TRN0302',
              ap,
              `${base}.${field}[${k}]`,
              `source ${field} entry "${ns}" names a namespace with no workloads and no services in the registry`,
            );
          });
        }

        for (const field of ['principals', 'notPrincipals'] as const) {
          arr(source[field]).forEach((raw, k) => {
            const principal = str(raw);
            if (!principal) return;
            const parsed = parsePrincipal(principal);
            if (!parsed) return; // "*" and other wildcard forms match whatever exists
            const unused = mesh.unusedPrincipalPart(parsed.ns, parsed.sa);
            const path = `${base}.${field}[${k}]`;
            if (unused === 'namespace') {
              rep.report(
                'TRN0303',
                ap,
                path,
                `source ${field} entry "${principal}" names namespace "${parsed.ns}", which has no workloads in the registry`,
              );
            } else if (unused === 'account') {
              rep.report(
                'TRN0303',
                ap,
                path,
                `source ${field} entry "${principal}" names service account "${parsed.sa}", which no workload in namespace "${parsed.ns}" uses`,
              );
            }
          });
        }
      });
    });
  }
}

// --- TRN0304 --------------------------------------------------------------------------------

function checkSelectors(mesh: MeshIndex, rep: Reporter): void {
  const check = (r: Res<{ selector?: { matchLabels?: Record<string, string> | undefined } | undefined }>): void => {
    const selector = labelsOf(r.spec.selector?.matchLabels);
    if (Object.keys(selector).length === 0) return;
    if (mesh.anyWorkloadSelected(r.namespace, selector)) return;
    rep.report(
      'TRN0304',
      r,
      'spec.selector.matchLabels',
      `selector {${formatLabels(selector)}} matches no workload in namespace "${r.namespace}"; the ${r.kind} applies to nothing`,
    );
  };
  for (const pa of mesh.peerAuthentications) check(pa);
  for (const ap of mesh.authorizationPolicies) {
    // Policies attached by targetRef(s) (gateways, waypoints) do not select workloads by label.
    if (ap.spec.targetRef !== undefined || (Array.isArray(ap.spec.targetRefs) && ap.spec.targetRefs.length > 0)) continue;
    check(ap);
  }
}

// --- TRN0305 --------------------------------------------------------------------------------

/**
 * Auto mTLS sends mutual TLS only to endpoints labelled `security.istio.io/tlsMode: istio` (what
 * Istio's injector sets). A workload without it gets plain text from every client; if the policy
 * that decides its mode is STRICT, its sidecar refuses all of them. Reported on that policy, once,
 * naming the first few workloads.
 */
function checkStrictWithoutSidecar(mesh: MeshIndex, rep: Reporter): void {
  if (mesh.peerAuthentications.length === 0) return;
  const unlabelled = new Map<Res<PeerAuthenticationSpecView>, string[]>();
  for (const w of mesh.workloads) {
    const labels = labelsOf(w.labels);
    if (labels[TLS_MODE_LABEL] === 'istio') continue;
    const pm = mesh.effectivePeerMode(w.namespace, labels, undefined);
    if (pm.mode !== 'STRICT' || !pm.policy) continue;
    (unlabelled.get(pm.policy) ?? unlabelled.set(pm.policy, []).get(pm.policy)!).push(`${w.namespace}/${w.name}`);
  }
  for (const [policy, names] of unlabelled) {
    const shown = names.slice(0, 3).join(', ') + (names.length > 3 ? ` and ${names.length - 3} more` : '');
    rep.report(
      'TRN0305',
      policy,
      'spec.mtls.mode',
      `STRICT applies to ${names.length} workload(s) not labelled security.istio.io/tlsMode: istio (${shown}): clients send them plain text, which STRICT refuses; label the workloads that run a Tern sidecar`,
    );
  }
}
