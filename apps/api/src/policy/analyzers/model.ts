// Shared vocabulary of the semantic analyzer: the diagnostic shape, the catalogue of codes, and
// the structural "views" of the Istio kinds the checks read. The views declare only the fields the
// analyzer looks at, every one optional, so any resource shaped like Istio's API (the zod-inferred
// types in @tern/shared, or plain objects from YAML) is assignable to them.

// The diagnostic shape is the API's (packages/shared/src/api.ts): what analysis finds is what
// the API returns and stores.
import type { Diagnostic } from '@tern/shared';
export type { Diagnostic };
export type Level = Diagnostic['level'];

export interface AnalyzerInfo {
  code: string;
  name: string;
  level: Level;
  description: string;
}

// The catalogue. Codes are stable: never renumber, never reuse a retired code.
// 01xx VirtualService, 02xx DestinationRule, 03xx security (PeerAuthentication/AuthorizationPolicy).
const CATALOGUE = [
  {
    code: 'TRN0101',
    name: 'VirtualServiceDestinationHostNotFound',
    level: 'warning',
    description: 'A route, mirror or mirrors destination names a host that no registry service or visible ServiceEntry provides.',
  },
  {
    code: 'TRN0102',
    name: 'VirtualServiceDestinationSubsetNotFound',
    level: 'error',
    description: 'A route, mirror or mirrors destination names a subset that no visible DestinationRule for that host defines (Istio IST0101).',
  },
  {
    code: 'TRN0103',
    name: 'VirtualServiceRouteWeightsInvalid',
    level: 'error',
    description: 'A route with more than one destination has weights that do not sum to 100.',
  },
  {
    code: 'TRN0104',
    name: 'ConflictingMeshVirtualServiceHosts',
    level: 'warning',
    description: 'Two or more VirtualServices bound to sidecars ("mesh") claim the same host with overlapping exportTo visibility (Istio IST0109).',
  },
  {
    code: 'TRN0105',
    name: 'VirtualServiceHostNotFound',
    level: 'warning',
    description: 'A sidecar-bound VirtualService host is a short name or cluster-internal name that resolves to no registry service or ServiceEntry.',
  },
  {
    code: 'TRN0106',
    name: 'VirtualServiceDestinationPortNotFound',
    level: 'warning',
    description: 'A destination selects a port number that the destination service (or ServiceEntry) does not expose.',
  },
  {
    code: 'TRN0201',
    name: 'DestinationRuleHostNotFound',
    level: 'warning',
    description: 'A DestinationRule host resolves to no registry service or visible ServiceEntry.',
  },
  {
    code: 'TRN0202',
    name: 'DestinationRuleSubsetNoWorkloads',
    level: 'warning',
    description: "A DestinationRule subset's labels match no workload in the namespace of the host's service (Istio IST0173, Kiali KIA0203).",
  },
  {
    code: 'TRN0203',
    name: 'ConflictingDestinationRuleSubsets',
    level: 'error',
    description: 'Two DestinationRules for the same host in the same namespace define the same subset name (Kiali KIA0201).',
  },
  {
    code: 'TRN0204',
    name: 'MultipleDestinationRulesForHost',
    level: 'warning',
    description: 'Two DestinationRules for the same host in the same namespace; Istio merges them only partially (first traffic policy wins).',
  },
  {
    code: 'TRN0301',
    name: 'MTLSPolicyConflict',
    level: 'error',
    description: 'A DestinationRule TLS mode DISABLE or SIMPLE sends non-mTLS traffic to workloads whose effective PeerAuthentication is STRICT (Istio IST0113, Kiali KIA0501).',
  },
  {
    code: 'TRN0302',
    name: 'AuthorizationPolicyUnknownNamespace',
    level: 'warning',
    description: 'An AuthorizationPolicy source namespaces/notNamespaces entry names a namespace with no workloads and no services.',
  },
  {
    code: 'TRN0303',
    name: 'AuthorizationPolicyUnknownPrincipal',
    level: 'warning',
    description: 'An AuthorizationPolicy source principals/notPrincipals entry names a namespace/service account that no workload uses.',
  },
  {
    code: 'TRN0304',
    name: 'WorkloadSelectorMatchesNoWorkload',
    level: 'warning',
    description: 'A PeerAuthentication or AuthorizationPolicy selector matches no workload in its namespace (Istio IST0127).',
  },
  {
    code: 'TRN0305',
    name: 'StrictWorkloadWithoutSidecarLabel',
    level: 'warning',
    description: 'A STRICT PeerAuthentication decides the mode of workloads that are not labelled security.istio.io/tlsMode: istio: clients send them plain text (auto mTLS), which STRICT refuses.',
  },
] as const satisfies ReadonlyArray<AnalyzerInfo>;

/** The codes a check may report; a typo in a check is a compile error. */
export type Code = (typeof CATALOGUE)[number]['code'];

export const ANALYZERS: ReadonlyArray<Readonly<AnalyzerInfo>> = Object.freeze(CATALOGUE.map((a) => Object.freeze({ ...a })));

const BY_CODE: ReadonlyMap<string, AnalyzerInfo> = new Map(ANALYZERS.map((a) => [a.code, a]));

export function info(code: Code): AnalyzerInfo {
  const a = BY_CODE.get(code);
  if (!a) throw new Error(`unknown analyzer code ${code}`);
  return a;
}

// ---------------------------------------------------------------------------------------------
// Structural views of the Istio kinds (only the fields the analyzer reads).

export interface SelectorView {
  matchLabels?: Record<string, string> | undefined;
}

export interface DestinationView {
  host?: string | undefined;
  subset?: string | undefined;
  port?: { number?: number | undefined } | undefined;
}

export interface RouteDestinationView {
  destination?: DestinationView | undefined;
  weight?: number | undefined;
}

export interface HTTPRouteView {
  route?: RouteDestinationView[] | undefined;
  mirror?: DestinationView | undefined;
  mirrors?: Array<{ destination?: DestinationView | undefined }> | undefined;
}

export interface L4RouteView {
  route?: RouteDestinationView[] | undefined;
}

export interface VirtualServiceSpecView {
  hosts?: string[] | undefined;
  gateways?: string[] | undefined;
  exportTo?: string[] | undefined;
  http?: HTTPRouteView[] | undefined;
  tcp?: L4RouteView[] | undefined;
  tls?: L4RouteView[] | undefined;
}

export interface ClientTLSView {
  mode?: string | undefined;
}

export interface PortTrafficPolicyView {
  port?: { number?: number | undefined } | undefined;
  tls?: ClientTLSView | undefined;
}

export interface TrafficPolicyView {
  tls?: ClientTLSView | undefined;
  portLevelSettings?: PortTrafficPolicyView[] | undefined;
}

export interface SubsetView {
  name?: string | undefined;
  labels?: Record<string, string> | undefined;
  trafficPolicy?: TrafficPolicyView | undefined;
}

export interface DestinationRuleSpecView {
  host?: string | undefined;
  trafficPolicy?: TrafficPolicyView | undefined;
  subsets?: SubsetView[] | undefined;
  exportTo?: string[] | undefined;
  workloadSelector?: SelectorView | undefined;
}

export interface ServiceEntrySpecView {
  hosts?: string[] | undefined;
  exportTo?: string[] | undefined;
  ports?: Array<{ number?: number | undefined }> | undefined;
}

export interface PeerAuthenticationSpecView {
  selector?: SelectorView | undefined;
  mtls?: { mode?: string | undefined } | undefined;
  portLevelMtls?: Record<string, { mode?: string | undefined } | undefined> | undefined;
}

export interface SourceView {
  principals?: string[] | undefined;
  notPrincipals?: string[] | undefined;
  namespaces?: string[] | undefined;
  notNamespaces?: string[] | undefined;
}

export interface AuthorizationPolicySpecView {
  selector?: SelectorView | undefined;
  targetRef?: unknown;
  targetRefs?: unknown;
  rules?: Array<{ from?: Array<{ source?: SourceView | undefined }> | undefined }> | undefined;
}

/** One resource as the analyzer sees it, with its namespace already defaulted. */
export interface Res<S> {
  kind: string;
  name: string;
  namespace: string;
  creationTimestamp: string | undefined;
  spec: S;
}
