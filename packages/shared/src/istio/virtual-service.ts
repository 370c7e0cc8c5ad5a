import { z } from 'zod';

import { duration } from './duration.ts';
import { report } from './issues.ts';
import { dns1123Label, dns1123Subdomain, exportTo, gatewayList, hostName, hostProblem, labelMap } from './names.ts';
import { isIPOrCidr } from './net.ts';
import { intIn, intPercent, nonNegativeInt32, percentSchema, port, weight } from './numbers.ts';
import { namedStringMatchSchema, stringMatchSchema } from './string-match.ts';

// networking.istio.io VirtualService, field for field as in Istio's reference (v1, v1beta1 and
// v1alpha3 share one schema). Structural rules come from the CRD's OpenAPI schema; the
// cross-field rules are the ones istiod's validating webhook applies to a single resource.

// ---- headers -------------------------------------------------------------------------------

// RFC 7230 token characters; a leading ':' names an HTTP/2 pseudo-header such as :authority.
const HEADER_NAME = /^:?[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

function headerNameProblem(name: string): string | null {
  if (name === '') return 'must not be an empty header name';
  return HEADER_NAME.test(name) ? null : `is not a valid HTTP header name (${JSON.stringify(name)})`;
}

const headerValueMap = () =>
  z.record(z.string(), z.string()).superRefine((m, ctx) => {
    for (const key of Object.keys(m)) {
      const p = headerNameProblem(key);
      if (p) report(ctx, 'header_name', p, [key]);
    }
  });

export const headerOperationsSchema = z.strictObject({
  set: headerValueMap().optional(),
  add: headerValueMap().optional(),
  remove: z
    .array(z.string())
    .superRefine((names, ctx) => {
      names.forEach((n, i) => {
        const p = headerNameProblem(n);
        if (p) report(ctx, 'header_name', p, [i]);
      });
    })
    .optional(),
});
export type HeaderOperations = z.infer<typeof headerOperationsSchema>;

export const headersSchema = z.strictObject({
  request: headerOperationsSchema.optional(),
  response: headerOperationsSchema.optional(),
});
export type HTTPHeaders = z.infer<typeof headersSchema>;

// ---- destinations --------------------------------------------------------------------------

export const portSelectorSchema = z.strictObject({
  number: port(),
});
export type PortSelector = z.infer<typeof portSelectorSchema>;

export const destinationSchema = z.strictObject({
  host: hostName({ wildcard: true }).superRefine((h, ctx) => {
    if (h === '*') report(ctx, 'hostname', 'must name a service, not the bare wildcard "*"');
  }),
  subset: dns1123Label().optional(),
  port: portSelectorSchema.optional(),
});
export type Destination = z.infer<typeof destinationSchema>;

export const httpRouteDestinationSchema = z.strictObject({
  destination: destinationSchema,
  weight: weight().optional(),
  headers: headersSchema.optional(),
});
export type HTTPRouteDestination = z.infer<typeof httpRouteDestinationSchema>;

export const routeDestinationSchema = z.strictObject({
  destination: destinationSchema,
  weight: weight().optional(),
});
export type RouteDestination = z.infer<typeof routeDestinationSchema>;

/**
 * Tern requires the weights of a multi-destination route to add up to 100, as older Istio
 * webhooks did, so that a weight always reads as a percentage. (Current Istio treats weights as
 * relative and only rejects a total of 0.) An omitted weight counts as 0, as in the proto.
 */
function checkWeights(route: ReadonlyArray<{ weight?: number | undefined }> | undefined, ctx: z.RefinementCtx<unknown>, path: PropertyKey[]): void {
  if (!route || route.length < 2) return;
  if (!route.every((d) => d.weight === undefined || Number.isInteger(d.weight))) return;
  const total = route.reduce((sum, d) => sum + (d.weight ?? 0), 0);
  if (total !== 100) {
    const parts = route.map((d) => String(d.weight ?? 0)).join(' + ');
    report(ctx, 'weights_sum_100', `has ${route.length} destinations whose weights must add up to 100 (${parts} = ${total})`, path);
  }
}

// ---- match ---------------------------------------------------------------------------------

const matchKeyMap = () =>
  z.record(z.string(), namedStringMatchSchema).superRefine((m, ctx) => {
    for (const key of Object.keys(m)) {
      if (key === '' || /[\s\u0000-\u001f\u007f]/.test(key)) report(ctx, 'header_name', 'must be a non-empty name without spaces or control characters', [key]);
    }
  });

export const httpMatchRequestSchema = z.strictObject({
  name: z.string().optional(),
  uri: stringMatchSchema.optional(),
  scheme: stringMatchSchema.optional(),
  method: stringMatchSchema.optional(),
  authority: stringMatchSchema.optional(),
  headers: matchKeyMap().optional(),
  port: port().optional(),
  sourceLabels: labelMap().optional(),
  gateways: gatewayList().optional(),
  queryParams: matchKeyMap().optional(),
  ignoreUriCase: z.boolean().optional(),
  withoutHeaders: matchKeyMap().optional(),
  sourceNamespace: dns1123Label().optional(),
  statPrefix: z.string().optional(),
});
export type HTTPMatchRequest = z.infer<typeof httpMatchRequestSchema>;

// ---- redirect, direct response, delegate, rewrite -------------------------------------------

export const REDIRECT_PORT_DERIVATIONS = ['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'] as const;

export const httpRedirectSchema = z
  .strictObject({
    uri: z.string().optional(),
    authority: z.string().optional(),
    port: port().optional(),
    derivePort: z.enum(REDIRECT_PORT_DERIVATIONS).optional(),
    scheme: z.string().optional(),
    redirectCode: intIn({ min: 300, max: 399, what: 'a redirect status code' }).optional(),
  })
  .superRefine((r, ctx) => {
    if (r.port !== undefined && r.derivePort !== undefined) report(ctx, 'one_of', 'must set only one of port or derivePort', ['derivePort']);
    if (r.uri === undefined && r.authority === undefined && r.port === undefined && r.derivePort === undefined && r.scheme === undefined) {
      report(ctx, 'redirect_target_required', 'must change at least one of uri, authority, scheme, port or derivePort');
    }
    if (r.scheme !== undefined && r.scheme !== 'http' && r.scheme !== 'https') {
      report(ctx, 'enum', `must be "http" or "https" (got ${JSON.stringify(r.scheme)})`, ['scheme']);
    }
  });
export type HTTPRedirect = z.infer<typeof httpRedirectSchema>;

/** istiod refuses direct responses over 1 MB: every proxy holds a copy in memory. */
export const MAX_DIRECT_RESPONSE_BYTES = 1024 * 1024;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export const httpBodySchema = z
  .strictObject({
    string: z.string().optional(),
    bytes: z.string().optional(),
  })
  .superRefine((b, ctx) => {
    if (b.string !== undefined && b.bytes !== undefined) report(ctx, 'one_of', 'must set only one of string or bytes', ['bytes']);
    if (b.bytes !== undefined && !BASE64.test(b.bytes.replace(/\s+/g, ''))) {
      report(ctx, 'base64', 'must be base64-encoded', ['bytes']);
    }
    const size = b.string !== undefined ? new TextEncoder().encode(b.string).length : b.bytes !== undefined ? Math.floor((b.bytes.replace(/\s+/g, '').length * 3) / 4) : 0;
    if (size > MAX_DIRECT_RESPONSE_BYTES) {
      report(ctx, 'max_length', `must be at most 1 MB (${MAX_DIRECT_RESPONSE_BYTES} bytes); it is ${size} bytes`, [b.string !== undefined ? 'string' : 'bytes']);
    }
  });
export type HTTPBody = z.infer<typeof httpBodySchema>;

export const httpDirectResponseSchema = z.strictObject({
  status: intIn({ min: 200, max: 600, what: 'an HTTP status code' }),
  body: httpBodySchema.optional(),
});
export type HTTPDirectResponse = z.infer<typeof httpDirectResponseSchema>;

export const delegateSchema = z.strictObject({
  name: dns1123Subdomain(),
  namespace: dns1123Label().optional(),
});
export type Delegate = z.infer<typeof delegateSchema>;

export const regexRewriteSchema = z.strictObject({
  match: z.string().min(1).max(1024),
  rewrite: z.string().min(1),
});
export type RegexRewrite = z.infer<typeof regexRewriteSchema>;

export const httpRewriteSchema = z
  .strictObject({
    uri: z.string().optional(),
    authority: z.string().optional(),
    uriRegexRewrite: regexRewriteSchema.optional(),
  })
  .superRefine((r, ctx) => {
    if (r.uri !== undefined && r.uri !== '' && r.uriRegexRewrite !== undefined) {
      report(ctx, 'uri_with_uri_regex_rewrite', 'must set only one of uri or uriRegexRewrite', ['uriRegexRewrite']);
    }
    if (!r.uri && !r.authority && r.uriRegexRewrite === undefined) {
      report(ctx, 'rewrite_target_required', 'must set at least one of uri, uriRegexRewrite or authority');
    }
  });
export type HTTPRewrite = z.infer<typeof httpRewriteSchema>;

// ---- retries -------------------------------------------------------------------------------

/** Envoy retry conditions Istio accepts in retryOn, besides bare HTTP status codes. */
export const RETRY_ON_POLICIES = [
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;

export const httpRetrySchema = z
  .strictObject({
    attempts: nonNegativeInt32().optional(),
    perTryTimeout: duration().optional(),
    retryOn: z.string().optional(),
    retryRemoteLocalities: z.boolean().optional(),
    retryIgnorePreviousHosts: z.boolean().optional(),
    backoff: duration().optional(),
  })
  .superRefine((r, ctx) => {
    if (r.retryOn !== undefined && r.retryOn !== '') {
      for (const policy of r.retryOn.split(',')) {
        const code = /^[0-9]{3}$/.test(policy) ? Number(policy) : NaN;
        if (!(code >= 100 && code <= 599) && !(RETRY_ON_POLICIES as readonly string[]).includes(policy)) {
          report(ctx, 'retry_on', `contains ${JSON.stringify(policy)}, which is neither an HTTP status code nor one of ${RETRY_ON_POLICIES.join(', ')}`, ['retryOn']);
        }
      }
    }
    // attempts defaults to 0, which disables retries; settings beside it would silently do nothing.
    if ((r.attempts ?? 0) === 0 && (r.perTryTimeout !== undefined || (r.retryOn ?? '') !== '' || r.retryRemoteLocalities !== undefined)) {
      report(ctx, 'retries_disabled', 'sets perTryTimeout, retryOn or retryRemoteLocalities while attempts is 0 (retries disabled); set attempts', ['attempts']);
    }
  });
export type HTTPRetry = z.infer<typeof httpRetrySchema>;

// ---- CORS ----------------------------------------------------------------------------------

export const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

const headerNameList = () =>
  z.array(z.string()).superRefine((names, ctx) => {
    names.forEach((n, i) => {
      if (n === '*') return;
      const p = headerNameProblem(n);
      if (p) report(ctx, 'header_name', p, [i]);
    });
  });

export const UNMATCHED_PREFLIGHTS = ['UNSPECIFIED', 'FORWARD', 'IGNORE'] as const;

export const corsPolicySchema = z.strictObject({
  allowOrigins: z
    .array(stringMatchSchema)
    .superRefine((origins, ctx) => {
      origins.forEach((o, i) => {
        if (!o.exact && !o.prefix && !o.regex) report(ctx, 'required', 'must set a non-empty exact, prefix or regex origin', [i]);
      });
    })
    .optional(),
  allowOrigin: z.array(z.string()).optional(),
  allowMethods: z
    .array(z.string())
    .superRefine((methods, ctx) => {
      methods.forEach((m, i) => {
        if (!(CORS_METHODS as readonly string[]).includes(m)) report(ctx, 'http_method', `must be one of ${CORS_METHODS.join(', ')} (got ${JSON.stringify(m)})`, [i]);
      });
    })
    .optional(),
  allowHeaders: headerNameList().optional(),
  exposeHeaders: headerNameList().optional(),
  maxAge: duration({ minMs: 1, wholeSeconds: true }).optional(),
  allowCredentials: z.boolean().optional(),
  unmatchedPreflights: z.enum(UNMATCHED_PREFLIGHTS).optional(),
});
export type CorsPolicy = z.infer<typeof corsPolicySchema>;

// ---- fault injection -----------------------------------------------------------------------

/** gRPC status names accepted by fault.abort.grpcStatus. */
export const GRPC_STATUS_CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

export const faultDelaySchema = z
  .strictObject({
    fixedDelay: duration().optional(),
    exponentialDelay: duration().optional(),
    percentage: percentSchema.optional(),
    /** Deprecated in Istio in favour of percentage. */
    percent: intPercent().optional(),
  })
  .superRefine((d, ctx) => {
    if (d.fixedDelay !== undefined && d.exponentialDelay !== undefined) report(ctx, 'one_of', 'must set only one of fixedDelay or exponentialDelay', ['exponentialDelay']);
    if (d.exponentialDelay !== undefined) report(ctx, 'not_supported', 'is not supported by Istio yet; use fixedDelay', ['exponentialDelay']);
  });
export type FaultDelay = z.infer<typeof faultDelaySchema>;

export const faultAbortSchema = z
  .strictObject({
    httpStatus: intIn({ min: 200, max: 600, what: 'an HTTP status code' }).optional(),
    grpcStatus: z.enum(GRPC_STATUS_CODES).optional(),
    http2Error: z.string().optional(),
    percentage: percentSchema.optional(),
  })
  .superRefine((a, ctx) => {
    const set = (['httpStatus', 'grpcStatus', 'http2Error'] as const).filter((k) => a[k] !== undefined);
    if (set.length > 1) report(ctx, 'one_of', `must set only one of httpStatus, grpcStatus or http2Error (it sets ${set.join(' and ')})`, [set[1] as string]);
    if (a.http2Error !== undefined) report(ctx, 'not_supported', 'is not supported by Istio yet; use httpStatus or grpcStatus', ['http2Error']);
  });
export type FaultAbort = z.infer<typeof faultAbortSchema>;

export const httpFaultInjectionSchema = z
  .strictObject({
    delay: faultDelaySchema.optional(),
    abort: faultAbortSchema.optional(),
  })
  .superRefine((f, ctx) => {
    if (f.delay === undefined && f.abort === undefined) report(ctx, 'fault_type_required', 'must set delay, abort or both');
  });
export type HTTPFaultInjection = z.infer<typeof httpFaultInjectionSchema>;

// ---- mirroring -----------------------------------------------------------------------------

export const httpMirrorPolicySchema = z.strictObject({
  destination: destinationSchema,
  percentage: percentSchema.optional(),
});
export type HTTPMirrorPolicy = z.infer<typeof httpMirrorPolicySchema>;

// ---- HTTP route ----------------------------------------------------------------------------

export const httpRouteSchema = z
  .strictObject({
    name: z.string().optional(),
    match: z.array(httpMatchRequestSchema).optional(),
    route: z.array(httpRouteDestinationSchema).optional(),
    redirect: httpRedirectSchema.optional(),
    directResponse: httpDirectResponseSchema.optional(),
    delegate: delegateSchema.optional(),
    rewrite: httpRewriteSchema.optional(),
    timeout: duration().optional(),
    retries: httpRetrySchema.optional(),
    fault: httpFaultInjectionSchema.optional(),
    mirror: destinationSchema.optional(),
    mirrors: z.array(httpMirrorPolicySchema).optional(),
    /** Deprecated: use mirrorPercentage. */
    mirrorPercent: intIn({ min: 0, max: 100, what: 'a whole percentage' }).optional(),
    /** Deprecated spelling that Istio's CRD still accepts. */
    mirror_percent: intIn({ min: 0, max: 100, what: 'a whole percentage' }).optional(),
    mirrorPercentage: percentSchema.optional(),
    corsPolicy: corsPolicySchema.optional(),
    headers: headersSchema.optional(),
  })
  .superRefine((h, ctx) => {
    const hasRoute = (h.route?.length ?? 0) > 0;
    if (h.delegate !== undefined) {
      // A route that hands off to a delegate VirtualService may carry nothing that decides the
      // response itself; the delegate does that.
      if (hasRoute) report(ctx, 'delegate_with_route', 'cannot set both delegate and route; the delegate VirtualService supplies the routes', ['route']);
      if (h.redirect) report(ctx, 'delegate_with_redirect', 'cannot set both delegate and redirect', ['redirect']);
      if (h.directResponse) report(ctx, 'delegate_with_direct_response', 'cannot set both delegate and directResponse', ['directResponse']);
    } else if (h.redirect) {
      if (hasRoute) report(ctx, 'redirect_with_route', 'cannot set both redirect and route: a redirect answers the request itself', ['redirect']);
      if (h.fault) report(ctx, 'redirect_with_fault', 'cannot set both redirect and fault', ['fault']);
      if (h.rewrite) report(ctx, 'redirect_with_rewrite', 'cannot set both redirect and rewrite', ['rewrite']);
      if (h.directResponse) report(ctx, 'direct_response_with_redirect', 'cannot set both directResponse and redirect', ['directResponse']);
    } else if (h.directResponse) {
      if (hasRoute) report(ctx, 'direct_response_with_route', 'cannot set both directResponse and route: a direct response answers the request itself', ['directResponse']);
      if (h.fault) report(ctx, 'direct_response_with_fault', 'cannot set both directResponse and fault', ['fault']);
      if (h.rewrite) report(ctx, 'direct_response_with_rewrite', 'cannot set both directResponse and rewrite', ['rewrite']);
    } else if (!hasRoute) {
      report(ctx, 'route_required', 'must set one of route, redirect, directResponse or delegate');
    }

    if (h.mirror !== undefined && (h.mirrors?.length ?? 0) > 0) {
      report(ctx, 'mirror_with_mirrors', 'cannot set both mirror and mirrors; list every mirror under mirrors', ['mirrors']);
    }
    if (h.mirrorPercent !== undefined && h.mirror_percent !== undefined) {
      report(ctx, 'mirror_percent_with_mirror_percentage', 'cannot set both mirrorPercent and mirror_percent (two spellings of one deprecated field)', ['mirror_percent']);
    }
    if ((h.mirrorPercent !== undefined || h.mirror_percent !== undefined) && h.mirrorPercentage !== undefined) {
      report(ctx, 'mirror_percent_with_mirror_percentage', 'cannot set both mirrorPercent (deprecated) and mirrorPercentage; keep mirrorPercentage', [h.mirrorPercent !== undefined ? 'mirrorPercent' : 'mirror_percent']);
    }
    checkWeights(h.route, ctx, ['route']);
    // Two writers of the Host header would race; Istio allows only one.
    const authoritySetters = [
      h.rewrite?.authority !== undefined ? 'rewrite.authority' : null,
      ...Object.keys(h.headers?.request?.set ?? {}).filter(isAuthorityHeader).map((k) => `headers.request.set.${k}`),
      ...Object.keys(h.headers?.request?.add ?? {}).filter(isAuthorityHeader).map((k) => `headers.request.add.${k}`),
    ].filter((x): x is string => x !== null);
    if (authoritySetters.length > 1) {
      report(ctx, 'authority_set_twice', `sets the authority (Host) header more than once: ${authoritySetters.join(', ')}`, ['headers']);
    }
  });
export type HTTPRoute = z.infer<typeof httpRouteSchema>;

function isAuthorityHeader(name: string): boolean {
  const n = name.toLowerCase();
  return n === ':authority' || n === 'host';
}

// ---- TLS and TCP routes --------------------------------------------------------------------

const subnetList = () =>
  z.array(z.string()).superRefine((list, ctx) => {
    list.forEach((s, i) => {
      if (!isIPOrCidr(s)) report(ctx, 'cidr', `must be an IP address or CIDR block such as "10.0.0.0/8" (got ${JSON.stringify(s)})`, [i]);
    });
  });

export const tlsMatchAttributesSchema = z.strictObject({
  sniHosts: z
    .array(z.string())
    .min(1)
    .superRefine((hosts, ctx) => {
      hosts.forEach((h, i) => {
        const p = hostProblem(h, { wildcard: true, ip: true });
        if (p) report(ctx, 'hostname', p, [i]);
      });
    }),
  destinationSubnets: subnetList().optional(),
  port: port().optional(),
  sourceLabels: labelMap().optional(),
  gateways: gatewayList().optional(),
  sourceNamespace: dns1123Label().optional(),
});
export type TLSMatchAttributes = z.infer<typeof tlsMatchAttributesSchema>;

export const l4MatchAttributesSchema = z.strictObject({
  destinationSubnets: subnetList().optional(),
  port: port().optional(),
  /** Deprecated in Istio and ignored by it; accepted because the CRD still lists it. */
  sourceSubnet: z.string().optional(),
  sourceLabels: labelMap().optional(),
  gateways: gatewayList().optional(),
  sourceNamespace: dns1123Label().optional(),
});
export type L4MatchAttributes = z.infer<typeof l4MatchAttributesSchema>;

export const tlsRouteSchema = z
  .strictObject({
    match: z.array(tlsMatchAttributesSchema).min(1),
    route: z.array(routeDestinationSchema).min(1),
  })
  .superRefine((t, ctx) => checkWeights(t.route, ctx, ['route']));
export type TLSRoute = z.infer<typeof tlsRouteSchema>;

export const tcpRouteSchema = z
  .strictObject({
    match: z.array(l4MatchAttributesSchema).optional(),
    route: z.array(routeDestinationSchema).min(1),
  })
  .superRefine((t, ctx) => checkWeights(t.route, ctx, ['route']));
export type TCPRoute = z.infer<typeof tcpRouteSchema>;

// ---- VirtualService ------------------------------------------------------------------------

export const virtualServiceSpecSchema = z
  .strictObject({
    hosts: z
      .array(z.string())
      .superRefine((hosts, ctx) => {
        hosts.forEach((h, i) => {
          const p = hostProblem(h, { wildcard: true, ip: true });
          if (p) report(ctx, 'hostname', p, [i]);
        });
        const seen = new Set<string>();
        hosts.forEach((h, i) => {
          const k = h.toLowerCase();
          if (seen.has(k)) report(ctx, 'unique', `repeats the host ${JSON.stringify(h)}`, [i]);
          seen.add(k);
        });
      })
      .optional(),
    gateways: gatewayList().optional(),
    http: z.array(httpRouteSchema).optional(),
    tls: z.array(tlsRouteSchema).optional(),
    tcp: z.array(tcpRouteSchema).optional(),
    exportTo: exportTo().optional(),
  })
  .superRefine((vs, ctx) => {
    const isDelegate = (vs.hosts?.length ?? 0) === 0;
    if (isDelegate) {
      // With no hosts, this VirtualService can only be used as another one's delegate.
      if ((vs.gateways?.length ?? 0) > 0) report(ctx, 'delegate_gateways', 'must be empty in a delegate VirtualService (one with no hosts)', ['gateways']);
      if ((vs.tls?.length ?? 0) > 0) report(ctx, 'delegate_http_only', 'must be empty in a delegate VirtualService (one with no hosts): only http routes can be delegated', ['tls']);
      if ((vs.tcp?.length ?? 0) > 0) report(ctx, 'delegate_http_only', 'must be empty in a delegate VirtualService (one with no hosts): only http routes can be delegated', ['tcp']);
      vs.http?.forEach((h, i) => {
        if (h.delegate) report(ctx, 'nested_delegate', 'cannot delegate again from inside a delegate VirtualService', ['http', i, 'delegate']);
      });
    }
    if ((vs.http?.length ?? 0) + (vs.tls?.length ?? 0) + (vs.tcp?.length ?? 0) === 0) {
      report(ctx, 'routes_required', 'must have at least one http, tls or tcp route');
    }
    const boundToMesh = (vs.gateways?.length ?? 0) === 0 || vs.gateways?.includes('mesh');
    if (boundToMesh) {
      vs.hosts?.forEach((h, i) => {
        if (h === '*') report(ctx, 'hostname', 'cannot be the bare wildcard "*" when the VirtualService applies to the mesh (no gateways, or "mesh" among them)', ['hosts', i]);
      });
    }
  });
export type VirtualServiceSpec = z.infer<typeof virtualServiceSpecSchema>;
