/**
 * A cluster's transport socket (UpstreamTlsContext or plaintext) → UpstreamTls. Pure; throws
 * ConfigError naming the field (the cluster is NACKed). Certificates are not read here: files and
 * SDS secrets are resolved by the data plane when it builds a SecureContext (dataplane/upstream-tls.ts).
 */
import { EXTENSION_TYPE_URL, type JsonObject } from '@tern/xds';
import { bool, fail, isObject, join, list, obj, rejectFields, str, strings, stringMatcher, type Ctx } from './compile-common.ts';
import type { StringMatcher } from './model.ts';

/** envoy.config.core.v3.DataSource, unresolved: file contents are read when a context is built. */
export type TlsSource = { readonly kind: 'inline'; readonly data: string | Buffer } | { readonly kind: 'file'; readonly path: string };

/** A client certificate: a key pair from the config, or an SDS secret by name. */
export type TlsCertSource = { readonly kind: 'pair'; readonly cert: TlsSource; readonly key: TlsSource } | { readonly kind: 'sds'; readonly name: string };

/** The trusted CAs: from the config, or an SDS secret (validation_context) by name. */
export type TlsTrustSource = { readonly kind: 'ca'; readonly ca: TlsSource } | { readonly kind: 'sds'; readonly name: string };

export interface SanMatcher {
  readonly type: 'URI' | 'DNS' | 'EMAIL' | 'IP_ADDRESS';
  readonly matcher: StringMatcher;
}

/** A compiled UpstreamTlsContext. */
export interface UpstreamTls {
  /** SNI sent in the ClientHello (`sni`); undefined = none. */
  readonly sni?: string;
  /** common_tls_context.alpn_protocols, in order (empty = no ALPN extension). */
  readonly alpn: readonly string[];
  readonly certs: readonly TlsCertSource[];
  /** undefined: the server certificate is not verified (Envoy's behaviour without a validation context). */
  readonly trust?: TlsTrustSource;
  /** match_typed_subject_alt_names (and the deprecated match_subject_alt_names as URI/DNS/EMAIL); empty = any. */
  readonly sans: readonly SanMatcher[];
  /** The SDS secret names this context needs (a new value of any of them rebuilds the SecureContext). */
  readonly sdsNames: readonly string[];
  readonly minVersion?: 'TLSv1.2' | 'TLSv1.3';
  readonly maxVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export const TLS_SOCKET_MATCH_KEY = 'envoy.transport_socket_match';

const SAN_TYPES = ['URI', 'DNS', 'EMAIL', 'IP_ADDRESS'] as const;
const TLS_VERSIONS: Record<string, 'TLSv1.2' | 'TLSv1.3' | undefined> = { TLS_AUTO: undefined, TLSv1_2: 'TLSv1.2', TLSv1_3: 'TLSv1.3' };

/**
 * A transport socket → UpstreamTls, or undefined for plaintext (raw_buffer, or a socket without
 * typed_config). Anything else is rejected naming `path`.
 */
export function compileTransportSocket(ctx: Ctx, ts: JsonObject, path: string): UpstreamTls | undefined {
  const tc = obj(ctx, ts, 'typed_config', path);
  const type = tc ? String(tc['@type'] ?? '') : '';
  if (!tc) {
    if (ts.name === undefined || ts.name === 'envoy.transport_sockets.raw_buffer' || ts.name === 'raw_buffer') return undefined;
    return fail(ctx, join(path, 'typed_config'), `is required for transport socket ${JSON.stringify(ts.name)}`);
  }
  if (type === RAW_BUFFER) return undefined;
  if (type !== EXTENSION_TYPE_URL.upstreamTls) {
    return fail(ctx, join(join(path, 'typed_config'), '@type'), `transport socket ${JSON.stringify(type)} is not supported (UpstreamTlsContext or RawBuffer only)`);
  }
  return compileUpstreamTlsContext(ctx, tc, join(path, 'typed_config'));
}

export const RAW_BUFFER = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

export function compileUpstreamTlsContext(ctx: Ctx, u: JsonObject, path: string): UpstreamTls {
  rejectFields(ctx, u, path, {
    enforce_rsa_key_usage: 'enforce_rsa_key_usage is not supported',
  });
  // Renegotiation is never offered by Node clients; allowing it changes nothing, so only `true` is noted.
  bool(ctx, u, 'allow_renegotiation', path);
  const sni = str(ctx, u, 'sni', path);
  const common = obj(ctx, u, 'common_tls_context', path) ?? {};
  const cp = join(path, 'common_tls_context');
  rejectFields(ctx, common, cp, {
    tls_certificate_provider_instance: 'certificate provider instances are not supported (use tls_certificate_sds_secret_configs)',
    tls_certificate_certificate_provider_instance: 'certificate provider instances are not supported (use tls_certificate_sds_secret_configs)',
    validation_context_certificate_provider_instance: 'certificate provider instances are not supported (use validation_context_sds_secret_config)',
    custom_handshaker: 'custom_handshaker is not supported',
    key_log: 'key_log is not supported',
  });
  const alpn = strings(ctx, common, 'alpn_protocols', cp);
  const certs: TlsCertSource[] = [];
  list(ctx, common, 'tls_certificates', cp).forEach((c, i) => {
    const p = join(join(cp, 'tls_certificates'), i);
    const chain = obj(ctx, c, 'certificate_chain', p);
    const key = obj(ctx, c, 'private_key', p);
    if (!chain) fail(ctx, join(p, 'certificate_chain'), 'is required');
    if (!key) fail(ctx, join(p, 'private_key'), 'is required');
    certs.push({ kind: 'pair', cert: dataSource(ctx, chain, join(p, 'certificate_chain')), key: dataSource(ctx, key, join(p, 'private_key')) });
  });
  const sdsNames: string[] = [];
  list(ctx, common, 'tls_certificate_sds_secret_configs', cp).forEach((s, i) => {
    const name = sdsName(ctx, s, join(join(cp, 'tls_certificate_sds_secret_configs'), i));
    certs.push({ kind: 'sds', name });
    sdsNames.push(name);
  });
  if (certs.length > 1) fail(ctx, join(cp, 'tls_certificates'), 'at most one client certificate is supported');

  let trust: TlsTrustSource | undefined;
  let sans: SanMatcher[] = [];
  const vc = obj(ctx, common, 'validation_context', cp);
  const vcSds = obj(ctx, common, 'validation_context_sds_secret_config', cp);
  const combined = obj(ctx, common, 'combined_validation_context', cp);
  const set = [vc, vcSds, combined].filter((x) => x !== undefined).length;
  if (set > 1) fail(ctx, cp, 'only one of validation_context, validation_context_sds_secret_config and combined_validation_context may be set');
  if (vc) ({ trust, sans } = validationContext(ctx, vc, join(cp, 'validation_context')));
  if (vcSds) {
    const name = sdsName(ctx, vcSds, join(cp, 'validation_context_sds_secret_config'));
    trust = { kind: 'sds', name };
    sdsNames.push(name);
  }
  if (combined) {
    const p = join(cp, 'combined_validation_context');
    const dflt = obj(ctx, combined, 'default_validation_context', p);
    if (!dflt) fail(ctx, join(p, 'default_validation_context'), 'is required');
    const v = validationContext(ctx, dflt, join(p, 'default_validation_context'));
    sans = v.sans;
    const sds = obj(ctx, combined, 'validation_context_sds_secret_config', p);
    if (!sds) fail(ctx, join(p, 'validation_context_sds_secret_config'), 'is required');
    const name = sdsName(ctx, sds, join(p, 'validation_context_sds_secret_config'));
    // The SDS secret's trusted_ca is the trust bundle; a static one in the default context is replaced.
    trust = { kind: 'sds', name };
    sdsNames.push(name);
  }
  // As Envoy: matching SANs of a certificate nobody verified would prove nothing.
  if (sans.length > 0 && !trust) fail(ctx, join(cp, 'validation_context'), 'SAN matchers need a trusted CA (trusted_ca or an SDS validation context)');
  const params = obj(ctx, common, 'tls_params', cp);
  let minVersion: UpstreamTls['minVersion'];
  let maxVersion: UpstreamTls['maxVersion'];
  if (params) {
    const pp = join(cp, 'tls_params');
    minVersion = tlsVersion(ctx, params, 'tls_minimum_protocol_version', pp);
    maxVersion = tlsVersion(ctx, params, 'tls_maximum_protocol_version', pp);
    rejectFields(ctx, params, pp, { ecdh_curves: 'ecdh_curves is not supported', signature_algorithms: 'signature_algorithms is not supported' });
  }
  return {
    ...(sni ? { sni } : {}),
    alpn,
    certs,
    ...(trust ? { trust } : {}),
    sans,
    sdsNames,
    ...(minVersion ? { minVersion } : {}),
    ...(maxVersion ? { maxVersion } : {}),
  };
}

function tlsVersion(ctx: Ctx, p: JsonObject, key: string, path: string): 'TLSv1.2' | 'TLSv1.3' | undefined {
  const v = str(ctx, p, key, path);
  if (v === undefined) return undefined;
  if (!(v in TLS_VERSIONS)) fail(ctx, join(path, key), `${JSON.stringify(v)} is not supported (TLS_AUTO, TLSv1_2 or TLSv1_3)`);
  return TLS_VERSIONS[v];
}

function sdsName(ctx: Ctx, s: JsonObject, path: string): string {
  const name = str(ctx, s, 'name', path);
  if (!name) fail(ctx, join(path, 'name'), 'is required (the SDS secret name)');
  const cfg = obj(ctx, s, 'sds_config', path);
  if (cfg && cfg.api_config_source !== undefined) fail(ctx, join(path, 'sds_config'), 'only ads (or the local identity agent) is supported as an SDS source');
  return name;
}

function validationContext(ctx: Ctx, vc: JsonObject, path: string): { trust: TlsTrustSource | undefined; sans: SanMatcher[] } {
  rejectFields(ctx, vc, path, {
    verify_certificate_spki: 'verify_certificate_spki is not supported',
    verify_certificate_hash: 'verify_certificate_hash is not supported',
    crl: 'crl is not supported',
    custom_validator_config: 'custom_validator_config is not supported',
    watched_directory: 'watched_directory is not supported',
  });
  const tca = obj(ctx, vc, 'trusted_ca', path);
  const trust: TlsTrustSource | undefined = tca ? { kind: 'ca', ca: dataSource(ctx, tca, join(path, 'trusted_ca')) } : undefined;
  const sans: SanMatcher[] = [];
  list(ctx, vc, 'match_typed_subject_alt_names', path).forEach((m, i) => {
    const p = join(join(path, 'match_typed_subject_alt_names'), i);
    const t = m.san_type;
    if (typeof t !== 'string' || !(SAN_TYPES as readonly string[]).includes(t)) {
      fail(ctx, join(p, 'san_type'), `must be one of ${SAN_TYPES.join(', ')} (got ${JSON.stringify(t ?? null)})`);
    }
    const mm = obj(ctx, m, 'matcher', p);
    if (!mm) fail(ctx, join(p, 'matcher'), 'is required');
    if (t === 'IP_ADDRESS' || t === 'EMAIL') fail(ctx, join(p, 'san_type'), `${t} SAN matching is not supported (URI or DNS)`);
    sans.push({ type: t as SanMatcher['type'], matcher: stringMatcher(ctx, mm, join(p, 'matcher')) });
  });
  // Deprecated untyped form: Envoy matches it against DNS, URI and email SANs.
  list(ctx, vc, 'match_subject_alt_names', path).forEach((m, i) => {
    const matcher = stringMatcher(ctx, m, join(join(path, 'match_subject_alt_names'), i));
    sans.push({ type: 'URI', matcher }, { type: 'DNS', matcher });
  });
  const trustChain = str(ctx, vc, 'trust_chain_verification', path);
  if (trustChain !== undefined && trustChain !== 'VERIFY_TRUST_CHAIN') fail(ctx, join(path, 'trust_chain_verification'), 'only VERIFY_TRUST_CHAIN is supported');
  return { trust, sans };
}

function dataSource(ctx: Ctx, d: JsonObject, path: string): TlsSource {
  if (typeof d.filename === 'string' && d.filename) return { kind: 'file', path: d.filename };
  if (typeof d.inline_string === 'string') return { kind: 'inline', data: d.inline_string };
  if (typeof d.inline_bytes === 'string') return { kind: 'inline', data: Buffer.from(d.inline_bytes, 'base64') };
  if (d.environment_variable !== undefined) fail(ctx, join(path, 'environment_variable'), 'environment variable data sources are not supported');
  return fail(ctx, path, 'needs filename, inline_string or inline_bytes');
}

/**
 * Envoy's transport socket selection for an endpoint: the first match whose every key equals the
 * endpoint's filter_metadata["envoy.transport_socket_match"] value; else the cluster's socket.
 * Values compare as JSON (strings, numbers, booleans).
 */
export function matchesSocket(match: JsonObject, endpointMeta: JsonObject | undefined): boolean {
  for (const k in match) {
    const want = match[k];
    const got = endpointMeta?.[k];
    if (got === undefined) return false;
    if (want !== got && JSON.stringify(want) !== JSON.stringify(got)) return false;
  }
  return true;
}

/** The endpoint's filter_metadata["envoy.transport_socket_match"], if any. */
export function socketMatchMetadata(metadata: JsonObject | undefined): JsonObject | undefined {
  const fm = metadata?.filter_metadata;
  const m = isObject(fm) ? fm[TLS_SOCKET_MATCH_KEY] : undefined;
  return isObject(m) ? m : undefined;
}
