// The Istio kinds Tern accepts, the API versions each is served at, and the names a person may
// type for them on a command line (as `kubectl get vs` accepts).

export const KINDS = ['VirtualService', 'DestinationRule', 'ServiceEntry', 'PeerAuthentication', 'AuthorizationPolicy'] as const;
export type Kind = (typeof KINDS)[number];

export const KIND_API_GROUPS = {
  VirtualService: 'networking.istio.io',
  DestinationRule: 'networking.istio.io',
  ServiceEntry: 'networking.istio.io',
  PeerAuthentication: 'security.istio.io',
  AuthorizationPolicy: 'security.istio.io',
} as const satisfies Record<Kind, string>;

export const NETWORKING_API_VERSIONS = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'] as const;
export const SECURITY_API_VERSIONS = ['security.istio.io/v1', 'security.istio.io/v1beta1'] as const;

/** Accepted apiVersions per kind, preferred (storage) version first. */
export const KIND_API_VERSIONS = {
  VirtualService: NETWORKING_API_VERSIONS,
  DestinationRule: NETWORKING_API_VERSIONS,
  ServiceEntry: NETWORKING_API_VERSIONS,
  PeerAuthentication: SECURITY_API_VERSIONS,
  AuthorizationPolicy: SECURITY_API_VERSIONS,
} as const satisfies Record<Kind, readonly string[]>;

export type ApiVersion = (typeof KIND_API_VERSIONS)[Kind][number];

export function isKind(s: unknown): s is Kind {
  return typeof s === 'string' && (KINDS as readonly string[]).includes(s);
}

export function isAcceptedApiVersion(kind: Kind, apiVersion: unknown): boolean {
  return typeof apiVersion === 'string' && (KIND_API_VERSIONS[kind] as readonly string[]).includes(apiVersion);
}

/** Resource names as in the CRDs: singular, plural and short names. */
export const KIND_NAMES = {
  VirtualService: { singular: 'virtualservice', plural: 'virtualservices', shortNames: ['vs'] },
  DestinationRule: { singular: 'destinationrule', plural: 'destinationrules', shortNames: ['dr'] },
  ServiceEntry: { singular: 'serviceentry', plural: 'serviceentries', shortNames: ['se'] },
  PeerAuthentication: { singular: 'peerauthentication', plural: 'peerauthentications', shortNames: ['pa'] },
  AuthorizationPolicy: { singular: 'authorizationpolicy', plural: 'authorizationpolicies', shortNames: ['ap'] },
} as const satisfies Record<Kind, { singular: string; plural: string; shortNames: readonly string[] }>;

/**
 * Maps what a user types for a resource type to its kind: singular, plural or short name, in any
 * case, optionally qualified with the API group ("vs.networking.istio.io"). Returns undefined for
 * anything else.
 */
export function resolveKind(input: string): Kind | undefined {
  const typed = input.trim().toLowerCase();
  for (const kind of KINDS) {
    const group = KIND_API_GROUPS[kind];
    const bare = typed.endsWith(`.${group}`) ? typed.slice(0, -(group.length + 1)) : typed;
    const names = KIND_NAMES[kind];
    if (bare === names.singular || bare === names.plural || (names.shortNames as readonly string[]).includes(bare)) return kind;
  }
  return undefined;
}
