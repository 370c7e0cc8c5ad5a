/**
 * RouteConfiguration → RouteTable: virtual hosts with their domain index, routes with compiled
 * matches and actions. Pure; throws ConfigError naming the field path.
 */
import { TYPE_URL, type JsonObject } from '@tern/xds';
import {
  bool,
  enumOf,
  fail,
  headerMatcher,
  headerMutations,
  isObject,
  join,
  list,
  num,
  obj,
  perFilterConfig,
  regexMatcher,
  regexRewrite,
  rejectFields,
  runtimeFraction,
  str,
  stringMatcher,
  strings,
  duration,
  type Ctx,
} from './compile-common.ts';
import type {
  ClusterTarget,
  DirectResponseAction,
  DomainIndex,
  HashPolicy,
  MirrorPolicy,
  PathMatcher,
  QueryParameterMatcher,
  RedirectAction,
  RetryPolicy,
  Route,
  RouteAction,
  RouteMatch,
  RouteTable,
  VirtualHost,
  WeightedClusterEntry,
} from './model.ts';

/** Compiles a RouteConfiguration (from RDS, static resources, or inline in an HCM). */
export function compileRouteTable(json: JsonObject, ctx: Ctx = { typeUrl: TYPE_URL.route, name: String(json.name ?? '') }, path = ''): RouteTable {
  rejectFields(ctx, json, path, {
    vhds: 'VHDS (on-demand virtual hosts) is not supported',
    cluster_specifier_plugins: 'cluster specifier plugins are not supported',
  });
  const virtualHosts = list(ctx, json, 'virtual_hosts', path).map((vh, i) => compileVirtualHost(ctx, vh, join(join(path, 'virtual_hosts'), i)));
  return {
    name: str(ctx, json, 'name', path) ?? '',
    virtualHosts,
    domainIndex: buildDomainIndex(ctx, virtualHosts, join(path, 'virtual_hosts')),
    headers: headerMutations(ctx, json, path),
    internalOnlyHeaders: strings(ctx, json, 'internal_only_headers', path).map((h) => h.toLowerCase()),
    raw: json,
  };
}

function buildDomainIndex(ctx: Ctx, vhosts: readonly VirtualHost[], path: string): DomainIndex {
  const exact = new Map<string, VirtualHost>();
  const suffixes: [string, VirtualHost][] = [];
  const prefixes: [string, VirtualHost][] = [];
  let star: VirtualHost | undefined;
  const seen = new Set<string>();
  vhosts.forEach((vh, i) => {
    vh.domains.forEach((domain, j) => {
      const dp = join(join(join(path, i), 'domains'), j);
      if (seen.has(domain)) fail(ctx, dp, `domain ${JSON.stringify(domain)} appears in more than one virtual host (domains must be unique)`);
      seen.add(domain);
      if (domain === '*') star = vh;
      else if (domain.startsWith('*')) {
        if (domain.indexOf('*', 1) >= 0) fail(ctx, dp, 'only one wildcard, at the start or the end, is allowed');
        suffixes.push([domain.slice(1), vh]);
      } else if (domain.endsWith('*')) {
        if (domain.indexOf('*') !== domain.length - 1) fail(ctx, dp, 'only one wildcard, at the start or the end, is allowed');
        prefixes.push([domain.slice(0, -1), vh]);
      } else if (domain.includes('*')) fail(ctx, dp, 'a wildcard is only allowed at the start or the end');
      else exact.set(domain, vh);
    });
  });
  // Longest first; stable sort keeps configuration order among equal lengths.
  suffixes.sort((a, b) => b[0].length - a[0].length);
  prefixes.sort((a, b) => b[0].length - a[0].length);
  return { exact, suffixes, prefixes, ...(star ? { star } : {}) };
}

function compileVirtualHost(ctx: Ctx, vh: JsonObject, path: string): VirtualHost {
  const name = str(ctx, vh, 'name', path);
  if (!name) fail(ctx, join(path, 'name'), 'is required');
  rejectFields(ctx, vh, path, {
    virtual_clusters: 'virtual_clusters is not supported',
    rate_limits: 'rate_limits is not supported',
    hedge_policy: 'hedge_policy is not supported',
    matcher: 'the generic matcher tree is not supported (use routes)',
  });
  const domains = strings(ctx, vh, 'domains', path).map((d) => d.toLowerCase());
  if (domains.length === 0) fail(ctx, join(path, 'domains'), 'at least one domain is required');
  const retry = obj(ctx, vh, 'retry_policy', path);
  return {
    name,
    domains,
    routes: list(ctx, vh, 'routes', path).map((r, i) => compileRoute(ctx, r, join(join(path, 'routes'), i), i)),
    headers: headerMutations(ctx, vh, path),
    requireTls: enumOf(ctx, vh, 'require_tls', path, ['NONE', 'EXTERNAL_ONLY', 'ALL'], 'NONE'),
    ...(retry ? { retryPolicy: compileRetryPolicy(ctx, retry, join(path, 'retry_policy')) } : {}),
    perFilterConfig: perFilterConfig(ctx, vh, path),
    includeAttemptCountInRequest: bool(ctx, vh, 'include_request_attempt_count', path) ?? false,
    includeAttemptCountInResponse: bool(ctx, vh, 'include_attempt_count_in_response', path) ?? false,
  };
}

function compileRoute(ctx: Ctx, r: JsonObject, path: string, index: number): Route {
  rejectFields(ctx, r, path, {
    filter_action: 'filter_action is not supported',
    non_forwarding_action: 'non_forwarding_action is not supported',
  });
  const matchJson = obj(ctx, r, 'match', path);
  if (!matchJson) fail(ctx, join(path, 'match'), 'is required');
  const match = compileMatch(ctx, matchJson, join(path, 'match'));
  if (match.path.kind === 'regex' && (isObject(r.route) && r.route.prefix_rewrite !== undefined)) fail(ctx, join(join(path, 'route'), 'prefix_rewrite'), 'cannot be used with a safe_regex path match (use regex_rewrite)');
  if (match.path.kind === 'regex' && (isObject(r.redirect) && r.redirect.prefix_rewrite !== undefined)) fail(ctx, join(join(path, 'redirect'), 'prefix_rewrite'), 'cannot be used with a safe_regex path match (use regex_rewrite)');
  let action: Route['action'] | undefined;
  const routeJson = obj(ctx, r, 'route', path);
  const redirectJson = obj(ctx, r, 'redirect', path);
  const directJson = obj(ctx, r, 'direct_response', path);
  if (routeJson) action = compileRouteAction(ctx, routeJson, join(path, 'route'));
  else if (redirectJson) action = compileRedirect(ctx, redirectJson, join(path, 'redirect'));
  else if (directJson) action = compileDirect(ctx, directJson, join(path, 'direct_response'));
  else fail(ctx, path, 'one of route, redirect or direct_response is required');
  const decorator = obj(ctx, r, 'decorator', path);
  const operation = decorator ? str(ctx, decorator, 'operation', join(path, 'decorator')) : undefined;
  const metadata = obj(ctx, r, 'metadata', path);
  return {
    name: str(ctx, r, 'name', path) || `#${index}`,
    match,
    action,
    headers: headerMutations(ctx, r, path),
    perFilterConfig: perFilterConfig(ctx, r, path),
    ...(operation ? { operation } : {}),
    ...(metadata ? { metadata } : {}),
  };
}

function compileMatch(ctx: Ctx, m: JsonObject, path: string): RouteMatch {
  rejectFields(ctx, m, path, {
    tls_context: 'tls_context matching is not supported',
    dynamic_metadata: 'dynamic_metadata matching is not supported',
    connect_matcher: 'CONNECT matching is not supported',
    path_match_policy: 'path_match_policy (URI templates) is not supported',
    filter_state: 'filter_state matching is not supported',
  });
  const caseSensitive = bool(ctx, m, 'case_sensitive', path) ?? true;
  let pm: PathMatcher | undefined;
  const prefix = str(ctx, m, 'prefix', path);
  const exact = str(ctx, m, 'path', path);
  const separated = str(ctx, m, 'path_separated_prefix', path);
  const re = obj(ctx, m, 'safe_regex', path);
  if (prefix !== undefined) pm = { kind: 'prefix', value: caseSensitive ? prefix : prefix.toLowerCase(), caseSensitive };
  else if (exact !== undefined) pm = { kind: 'path', value: caseSensitive ? exact : exact.toLowerCase(), caseSensitive };
  else if (separated !== undefined) {
    const sp = join(path, 'path_separated_prefix');
    if (!separated.startsWith('/')) fail(ctx, sp, 'must start with "/"');
    if (separated.length < 2 || separated.endsWith('/')) fail(ctx, sp, 'must not end with "/" (and "/" alone is not allowed)');
    if (/[?#]/.test(separated)) fail(ctx, sp, 'must not contain "?" or "#"');
    pm = { kind: 'separated', value: caseSensitive ? separated : separated.toLowerCase(), caseSensitive };
  } else if (re) {
    const { regex, source } = regexMatcher(ctx, re, join(path, 'safe_regex'), 'anchored');
    pm = { kind: 'regex', regex: caseSensitive ? regex : new RegExp(regex.source, regex.flags + (regex.flags.includes('i') ? '' : 'i')), source };
  } else if (m.connect_matcher !== undefined) fail(ctx, path, 'CONNECT matching is not supported');
  else fail(ctx, path, 'one of prefix, path, safe_regex or path_separated_prefix is required');
  const rf = obj(ctx, m, 'runtime_fraction', path);
  const frac = rf ? runtimeFraction(ctx, rf, join(path, 'runtime_fraction'), 1) : undefined;
  return {
    path: pm,
    headers: list(ctx, m, 'headers', path).map((h, i) => headerMatcher(ctx, h, join(join(path, 'headers'), i))),
    queryParameters: list(ctx, m, 'query_parameters', path).map((q, i) => compileQueryMatcher(ctx, q, join(join(path, 'query_parameters'), i))),
    grpc: m.grpc !== undefined,
    ...(frac !== undefined ? { fraction: frac } : {}),
  };
}

function compileQueryMatcher(ctx: Ctx, q: JsonObject, path: string): QueryParameterMatcher {
  const name = str(ctx, q, 'name', path);
  if (!name) fail(ctx, join(path, 'name'), 'is required');
  const sm = obj(ctx, q, 'string_match', path);
  if (sm) return { name, rule: { kind: 'string', matcher: stringMatcher(ctx, sm, join(path, 'string_match')) } };
  const present = bool(ctx, q, 'present_match', path);
  if (present === false) fail(ctx, join(path, 'present_match'), 'present_match: false is not supported (Envoy only matches presence)');
  return { name, rule: { kind: 'present' } };
}

function compileRouteAction(ctx: Ctx, a: JsonObject, path: string): RouteAction {
  rejectFields(ctx, a, path, {
    cluster_specifier_plugin: 'cluster specifier plugins are not supported',
    inline_cluster_specifier_plugin: 'cluster specifier plugins are not supported',
    rate_limits: 'rate_limits is not supported',
    hedge_policy: 'hedge_policy is not supported',
    internal_redirect_policy: 'internal redirects are not supported',
    early_data_policy: 'early_data_policy is not supported',
    retry_policy_typed_config: 'retry_policy_typed_config is not supported',
    path_rewrite_policy: 'path_rewrite_policy (URI templates) is not supported',
    metadata_match: 'metadata_match (subset load balancing) is not supported',
  });
  let target: ClusterTarget;
  const cluster = str(ctx, a, 'cluster', path);
  const header = a.cluster_header !== undefined ? (str(ctx, a, 'cluster_header', path) ?? '') : undefined;
  const weighted = obj(ctx, a, 'weighted_clusters', path);
  if (cluster !== undefined) {
    if (!cluster) fail(ctx, join(path, 'cluster'), 'must not be empty');
    target = { kind: 'cluster', cluster };
  } else if (header !== undefined) {
    if (!header) fail(ctx, join(path, 'cluster_header'), 'must name a header');
    target = { kind: 'header', header: header.toLowerCase() };
  } else if (weighted) {
    const w = compileWeightedClusters(ctx, weighted, join(path, 'weighted_clusters'));
    target = { kind: 'weighted', clusters: w.clusters, totalWeight: w.totalWeight };
  } else return fail(ctx, path, 'one of cluster, cluster_header or weighted_clusters is required');

  const hostLiteral = str(ctx, a, 'host_rewrite_literal', path);
  const hostHeader = str(ctx, a, 'host_rewrite_header', path);
  const hostPathRegex = obj(ctx, a, 'host_rewrite_path_regex', path);
  const autoHost = bool(ctx, a, 'auto_host_rewrite', path);
  let hostRewrite: RouteAction['hostRewrite'];
  if (hostLiteral) hostRewrite = { kind: 'literal', value: hostLiteral };
  else if (autoHost) hostRewrite = { kind: 'auto' };
  else if (hostHeader) hostRewrite = { kind: 'header', header: hostHeader.toLowerCase() };
  else if (hostPathRegex) {
    const rr = regexRewrite(ctx, hostPathRegex, join(path, 'host_rewrite_path_regex'))!;
    hostRewrite = { kind: 'pathRegex', regex: rr.regex, substitution: rr.substitution };
  }

  const prefixRewrite = str(ctx, a, 'prefix_rewrite', path);
  const rr = regexRewrite(ctx, obj(ctx, a, 'regex_rewrite', path), join(path, 'regex_rewrite'));
  if (prefixRewrite !== undefined && rr) fail(ctx, join(path, 'regex_rewrite'), 'prefix_rewrite and regex_rewrite cannot both be set');

  const retry = obj(ctx, a, 'retry_policy', path);
  const msd = obj(ctx, a, 'max_stream_duration', path);
  const grpcMax = msd ? duration(ctx, msd, 'grpc_timeout_header_max', join(path, 'max_stream_duration')) : undefined;
  const grpcOffset = msd ? duration(ctx, msd, 'grpc_timeout_header_offset', join(path, 'max_stream_duration')) : undefined;
  const maxDur = msd ? duration(ctx, msd, 'max_stream_duration', join(path, 'max_stream_duration')) : undefined;
  // Legacy max_grpc_timeout behaves like grpc_timeout_header_max.
  const legacyGrpcMax = duration(ctx, a, 'max_grpc_timeout', path);
  const legacyGrpcOffset = duration(ctx, a, 'grpc_timeout_offset', path);
  const effectiveGrpcMax = grpcMax ?? legacyGrpcMax;
  const effectiveGrpcOffset = grpcOffset ?? legacyGrpcOffset;
  const idleTimeoutMs = duration(ctx, a, 'idle_timeout', path);

  const upgrades = new Map<string, boolean>();
  list(ctx, a, 'upgrade_configs', path).forEach((u, i) => {
    const up = join(join(path, 'upgrade_configs'), i);
    const type = str(ctx, u, 'upgrade_type', up);
    if (!type) fail(ctx, join(up, 'upgrade_type'), 'is required');
    if (u.connect_config !== undefined) fail(ctx, join(up, 'connect_config'), 'CONNECT is not supported');
    upgrades.set(type.toLowerCase(), bool(ctx, u, 'enabled', up) ?? true);
  });

  return {
    kind: 'route',
    target,
    clusterNotFoundStatus: { SERVICE_UNAVAILABLE: 503, NOT_FOUND: 404, INTERNAL_SERVER_ERROR: 500 }[
      enumOf(ctx, a, 'cluster_not_found_response_code', path, ['SERVICE_UNAVAILABLE', 'NOT_FOUND', 'INTERNAL_SERVER_ERROR'], 'SERVICE_UNAVAILABLE')
    ],
    ...(prefixRewrite !== undefined ? { prefixRewrite } : {}),
    ...(rr ? { regexRewrite: rr } : {}),
    ...(hostRewrite ? { hostRewrite } : {}),
    timeoutMs: duration(ctx, a, 'timeout', path) ?? 15_000,
    ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}),
    ...(retry ? { retryPolicy: compileRetryPolicy(ctx, retry, join(path, 'retry_policy')) } : {}),
    hashPolicies: list(ctx, a, 'hash_policy', path).map((h, i) => compileHashPolicy(ctx, h, join(join(path, 'hash_policy'), i))),
    mirrors: compileMirrors(ctx, a, path),
    ...(effectiveGrpcMax !== undefined ? { grpcTimeoutHeaderMaxMs: effectiveGrpcMax } : {}),
    ...(effectiveGrpcOffset !== undefined ? { grpcTimeoutHeaderOffsetMs: effectiveGrpcOffset } : {}),
    ...(maxDur !== undefined ? { maxStreamDurationMs: maxDur } : {}),
    upgrades,
  };
}

function compileWeightedClusters(ctx: Ctx, w: JsonObject, path: string): { clusters: WeightedClusterEntry[]; totalWeight: number } {
  rejectFields(ctx, w, path, { header_name: 'header_name is not supported', runtime_key_prefix: 'runtime keys are not supported' });
  const items = list(ctx, w, 'clusters', path);
  if (items.length === 0) fail(ctx, join(path, 'clusters'), 'at least one cluster is required');
  const all = items.map((c, i): WeightedClusterEntry => {
    const cp = join(join(path, 'clusters'), i);
    rejectFields(ctx, c, cp, { cluster_header: 'cluster_header inside weighted_clusters is not supported' });
    const cluster = str(ctx, c, 'name', cp);
    if (!cluster) fail(ctx, join(cp, 'name'), 'is required');
    const weight = num(ctx, c, 'weight', cp) ?? 0;
    if (!Number.isInteger(weight) || weight < 0) fail(ctx, join(cp, 'weight'), 'must be a non-negative integer');
    const hostRewrite = str(ctx, c, 'host_rewrite_literal', cp);
    return { cluster, weight, headers: headerMutations(ctx, c, cp), ...(hostRewrite ? { hostRewrite } : {}), perFilterConfig: perFilterConfig(ctx, c, cp) };
  });
  const totalWeight = all.reduce((s, c) => s + c.weight, 0);
  if (totalWeight === 0) fail(ctx, join(path, 'clusters'), 'the sum of weights must be greater than 0');
  const declared = num(ctx, w, 'total_weight', path);
  if (declared !== undefined && declared !== 0 && declared !== totalWeight) fail(ctx, join(path, 'total_weight'), `is ${declared} but the weights sum to ${totalWeight}`);
  return { clusters: all.filter((c) => c.weight > 0), totalWeight };
}

export function compileRetryPolicy(ctx: Ctx, r: JsonObject, path: string): RetryPolicy {
  // retry_priority (Istio sends previous_priorities) is accepted and ignored: one priority level is used at a time.
  rejectFields(ctx, r, path, { rate_limited_retry_back_off: 'rate_limited_retry_back_off is not supported' });
  const retryOnText = str(ctx, r, 'retry_on', path) ?? '';
  const retryOn = new Set(retryOnText.split(',').map((s) => s.trim()).filter(Boolean));
  const backOff = obj(ctx, r, 'retry_back_off', path);
  const base = backOff ? duration(ctx, backOff, 'base_interval', join(path, 'retry_back_off')) : undefined;
  if (backOff && !base) fail(ctx, join(join(path, 'retry_back_off'), 'base_interval'), 'is required and must be > 0');
  const baseMs = base ?? 25;
  const max = backOff ? duration(ctx, backOff, 'max_interval', join(path, 'retry_back_off')) : undefined;
  if (max !== undefined && max < baseMs) fail(ctx, join(join(path, 'retry_back_off'), 'max_interval'), 'must be >= base_interval');
  const perTryTimeoutMs = duration(ctx, r, 'per_try_timeout', path);
  const perTryIdleTimeoutMs = duration(ctx, r, 'per_try_idle_timeout', path);
  return {
    retryOn,
    numRetries: num(ctx, r, 'num_retries', path) ?? 1,
    ...(perTryTimeoutMs !== undefined ? { perTryTimeoutMs } : {}),
    ...(perTryIdleTimeoutMs !== undefined ? { perTryIdleTimeoutMs } : {}),
    retriableStatusCodes: new Set(((r.retriable_status_codes ?? []) as number[]).map(Number)),
    backOffBaseMs: baseMs,
    backOffMaxMs: max ?? baseMs * 10,
    hostPredicates: list(ctx, r, 'retry_host_predicate', path).map((p, i) => str(ctx, p, 'name', join(join(path, 'retry_host_predicate'), i)) ?? ''),
    hostSelectionRetryMaxAttempts: num(ctx, r, 'host_selection_retry_max_attempts', path) ?? 1,
    retriableHeaders: list(ctx, r, 'retriable_headers', path).map((h, i) => headerMatcher(ctx, h, join(join(path, 'retriable_headers'), i))),
  };
}

function compileHashPolicy(ctx: Ctx, h: JsonObject, path: string): HashPolicy {
  const terminal = bool(ctx, h, 'terminal', path) ?? false;
  const header = obj(ctx, h, 'header', path);
  if (header) {
    const name = str(ctx, header, 'header_name', join(path, 'header'));
    if (!name) fail(ctx, join(join(path, 'header'), 'header_name'), 'is required');
    if (header.regex_rewrite !== undefined) fail(ctx, join(join(path, 'header'), 'regex_rewrite'), 'is not supported');
    return { kind: 'header', header: name.toLowerCase(), terminal };
  }
  const cookie = obj(ctx, h, 'cookie', path);
  if (cookie) {
    const cp = join(path, 'cookie');
    const name = str(ctx, cookie, 'name', cp);
    if (!name) fail(ctx, join(cp, 'name'), 'is required');
    if (cookie.attributes !== undefined) fail(ctx, join(cp, 'attributes'), 'is not supported');
    const ttlMs = duration(ctx, cookie, 'ttl', cp);
    const cookiePath = str(ctx, cookie, 'path', cp);
    return { kind: 'cookie', name, ...(ttlMs !== undefined ? { ttlMs } : {}), ...(cookiePath ? { path: cookiePath } : {}), terminal };
  }
  const conn = obj(ctx, h, 'connection_properties', path);
  if (conn) {
    if (bool(ctx, conn, 'source_ip', join(path, 'connection_properties')) !== true) fail(ctx, join(join(path, 'connection_properties'), 'source_ip'), 'must be true');
    return { kind: 'sourceIp', terminal };
  }
  const qp = obj(ctx, h, 'query_parameter', path);
  if (qp) {
    const name = str(ctx, qp, 'name', join(path, 'query_parameter'));
    if (!name) fail(ctx, join(join(path, 'query_parameter'), 'name'), 'is required');
    return { kind: 'queryParameter', name, terminal };
  }
  const fs = obj(ctx, h, 'filter_state', path);
  if (fs) {
    const key = str(ctx, fs, 'key', join(path, 'filter_state'));
    if (!key) fail(ctx, join(join(path, 'filter_state'), 'key'), 'is required');
    return { kind: 'filterState', key, terminal };
  }
  return fail(ctx, path, 'one of header, cookie, connection_properties, query_parameter or filter_state is required');
}

function compileMirrors(ctx: Ctx, a: JsonObject, path: string): MirrorPolicy[] {
  return list(ctx, a, 'request_mirror_policies', path).map((m, i) => {
    const mp = join(join(path, 'request_mirror_policies'), i);
    rejectFields(ctx, m, mp, { cluster_header: 'cluster_header mirrors are not supported' });
    const cluster = str(ctx, m, 'cluster', mp);
    if (!cluster) fail(ctx, join(mp, 'cluster'), 'is required');
    const traceSampled = bool(ctx, m, 'trace_sampled', mp);
    return {
      cluster,
      fraction: runtimeFraction(ctx, obj(ctx, m, 'runtime_fraction', mp), join(mp, 'runtime_fraction'), 1),
      ...(traceSampled !== undefined ? { traceSampled } : {}),
    };
  });
}

const REDIRECT_CODES = { MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308 } as const;

function compileRedirect(ctx: Ctx, r: JsonObject, path: string): RedirectAction {
  const https = bool(ctx, r, 'https_redirect', path);
  const scheme = https ? 'https' : str(ctx, r, 'scheme_redirect', path);
  const host = str(ctx, r, 'host_redirect', path);
  const port = num(ctx, r, 'port_redirect', path);
  const pathRedirect = str(ctx, r, 'path_redirect', path);
  const prefixRewrite = str(ctx, r, 'prefix_rewrite', path);
  const rr = regexRewrite(ctx, obj(ctx, r, 'regex_rewrite', path), join(path, 'regex_rewrite'));
  if (port !== undefined && (port < 1 || port > 65535)) fail(ctx, join(path, 'port_redirect'), 'must be a port number');
  const code = enumOf(ctx, r, 'response_code', path, Object.keys(REDIRECT_CODES) as (keyof typeof REDIRECT_CODES)[], 'MOVED_PERMANENTLY');
  return {
    kind: 'redirect',
    ...(scheme ? { scheme: scheme.toLowerCase() } : {}),
    ...(host ? { host } : {}),
    ...(port ? { port } : {}),
    ...(pathRedirect !== undefined ? { path: pathRedirect } : {}),
    ...(prefixRewrite !== undefined ? { prefixRewrite } : {}),
    ...(rr ? { regexRewrite: rr } : {}),
    status: REDIRECT_CODES[code],
    stripQuery: bool(ctx, r, 'strip_query', path) ?? false,
  };
}

function compileDirect(ctx: Ctx, d: JsonObject, path: string): DirectResponseAction {
  const status = num(ctx, d, 'status', path);
  if (status === undefined || !Number.isInteger(status) || status < 200 || status >= 600) fail(ctx, join(path, 'status'), 'must be an HTTP status in [200, 600)');
  const body = obj(ctx, d, 'body', path);
  let buf: Buffer | undefined;
  if (body) {
    const bp = join(path, 'body');
    rejectFields(ctx, body, bp, { filename: 'file bodies are not supported', environment_variable: 'environment-variable bodies are not supported' });
    const s = str(ctx, body, 'inline_string', bp);
    const b = str(ctx, body, 'inline_bytes', bp);
    if (s !== undefined) buf = Buffer.from(s, 'utf8');
    else if (b !== undefined) buf = Buffer.from(b, 'base64');
  }
  return { kind: 'direct', status, ...(buf ? { body: buf } : {}) };
}

