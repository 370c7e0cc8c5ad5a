import type { MeshResource, ServiceRecord, WorkloadRecord } from '@tern/shared';
import { DEFAULT_NAMESPACE, MeshIndex, Reporter, str, type AnalyzeOptions } from './analyzers/context.ts';
import { checkDestinationRules } from './analyzers/destinationrule.ts';
import type {
  AuthorizationPolicySpecView,
  DestinationRuleSpecView,
  Diagnostic,
  PeerAuthenticationSpecView,
  Res,
  ServiceEntrySpecView,
  VirtualServiceSpecView,
} from './analyzers/model.ts';
import { checkSecurity } from './analyzers/security.ts';
import { checkVirtualServices } from './analyzers/virtualservice.ts';

// Tern's semantic analyzer — the counterpart of `istioctl analyze` and Kiali's validations.
// A pure, deterministic function of the policy and the registry: the same state, in any order,
// yields the same diagnostics in the same order. docs/analysis.md lists every code.

export { ANALYZERS } from './analyzers/model.ts';
export type { AnalyzerInfo, Diagnostic, Level } from './analyzers/model.ts';
export type { AnalyzeOptions } from './analyzers/context.ts';

interface Meta {
  name: string;
  namespace?: string | undefined;
  creationTimestamp?: string | null | undefined;
}

export interface MeshState {
  resources: MeshResource[];
  services: ServiceRecord[];
  workloads: WorkloadRecord[];
}

function toRes<S>(r: { kind: string; metadata: Meta }, spec: S | undefined | null): Res<S> {
  const md: Partial<Meta> = r.metadata && typeof r.metadata === 'object' ? r.metadata : {};
  return {
    kind: r.kind,
    name: str(md.name) ?? '',
    namespace: str(md.namespace) ?? DEFAULT_NAMESPACE,
    creationTimestamp: str(md.creationTimestamp),
    spec: (spec && typeof spec === 'object' ? spec : {}) as S,
  };
}

function compare(a: Diagnostic, b: Diagnostic): number {
  for (const k of ['namespace', 'kind', 'resourceName', 'path', 'code', 'message'] as const) {
    if (a[k] < b[k]) return -1;
    if (a[k] > b[k]) return 1;
  }
  return 0;
}

/**
 * Runs every check over the mesh and returns the diagnostics sorted by namespace, kind, resource
 * name, field path, code and message. Resources of other kinds are ignored.
 */
export function analyze(state: MeshState, opts: AnalyzeOptions = {}): Diagnostic[] {
  const groups = {
    virtualServices: [] as Array<Res<VirtualServiceSpecView>>,
    destinationRules: [] as Array<Res<DestinationRuleSpecView>>,
    serviceEntries: [] as Array<Res<ServiceEntrySpecView>>,
    peerAuthentications: [] as Array<Res<PeerAuthenticationSpecView>>,
    authorizationPolicies: [] as Array<Res<AuthorizationPolicySpecView>>,
  };
  for (const r of Array.isArray(state.resources) ? state.resources : []) {
    if (!r || typeof r !== 'object') continue;
    switch (r.kind) {
      case 'VirtualService':
        groups.virtualServices.push(toRes<VirtualServiceSpecView>(r, r.spec));
        break;
      case 'DestinationRule':
        groups.destinationRules.push(toRes<DestinationRuleSpecView>(r, r.spec));
        break;
      case 'ServiceEntry':
        groups.serviceEntries.push(toRes<ServiceEntrySpecView>(r, r.spec));
        break;
      case 'PeerAuthentication':
        groups.peerAuthentications.push(toRes<PeerAuthenticationSpecView>(r, r.spec));
        break;
      case 'AuthorizationPolicy':
        groups.authorizationPolicies.push(toRes<AuthorizationPolicySpecView>(r, r.spec));
        break;
      default:
        break;
    }
  }

  const mesh = new MeshIndex(groups, state.services, state.workloads, opts);
  const rep = new Reporter();
  checkVirtualServices(mesh, rep);
  checkDestinationRules(mesh, rep);
  checkSecurity(mesh, rep);

  const sorted = rep.out.sort(compare);
  // Identical resources given twice produce identical diagnostics: report each once.
  return sorted.filter((d, i) => i === 0 || compare(d, sorted[i - 1] as Diagnostic) !== 0);
}
