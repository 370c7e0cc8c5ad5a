/**
 * Envoy's short response flags (the `%RESPONSE_FLAGS%` access-log field and Istio's
 * `response_flags` label). Only the ones this proxy can produce are listed.
 */
export const FLAG = {
  noRoute: 'NR',
  noCluster: 'NC',
  noHealthyUpstream: 'UH',
  upstreamConnectFailure: 'UF',
  upstreamConnectionTermination: 'UC',
  upstreamRemoteReset: 'UR',
  upstreamRequestTimeout: 'UT',
  upstreamProtocolError: 'UPE',
  downstreamConnectionTermination: 'DC',
  downstreamProtocolError: 'DPE',
  streamIdleTimeout: 'SI',
  directResponse: 'DR',
} as const;

export type Flag = (typeof FLAG)[keyof typeof FLAG];

/** Envoy's mapping of an HTTP status to a gRPC status for locally generated replies to gRPC calls. */
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 400: return 13; // INTERNAL
    case 401: return 16; // UNAUTHENTICATED
    case 403: return 7; // PERMISSION_DENIED
    case 404: return 12; // UNIMPLEMENTED
    case 429: case 502: case 503: case 504: return 14; // UNAVAILABLE
    default: return 2; // UNKNOWN
  }
}
