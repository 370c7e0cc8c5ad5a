import fs from 'node:fs';
import tls from 'node:tls';
import type { Json, JsonObject, ProxySnapshot } from '../config/model.ts';

/** An SDS secret a TLS context names has not arrived (e.g. the workload identity is not issued yet). */
export class MissingSecretError extends Error {
  override readonly name = 'MissingSecretError';
}

/** The parts of a DownstreamTlsContext the data plane applies. */
export interface ServerTls {
  /** Certificate, key and CA for tls.createServer / createSecureContext. */
  options: tls.SecureContextOptions;
  alpn: string[];
  requestCert: boolean;
}

/**
 * Builds a server SecureContext from a listener's transport_socket (DownstreamTlsContext): inline
 * or file certificates, or SDS secrets looked up by name in the snapshot. Throws an Error naming
 * the field when something is missing.
 */
export function serverTls(transportSocket: JsonObject, snap: ProxySnapshot, where: string): ServerTls {
  const ctxJson = (isObj(transportSocket.typed_config) ? transportSocket.typed_config : transportSocket) as JsonObject;
  const common = (isObj(ctxJson.common_tls_context) ? ctxJson.common_tls_context : {}) as JsonObject;
  const certs: { cert: string | Buffer; key: string | Buffer }[] = [];
  for (const [i, c] of arr(common.tls_certificates).entries()) certs.push(certPair(c, `${where}.common_tls_context.tls_certificates[${i}]`));
  for (const [i, sds] of arr(common.tls_certificate_sds_secret_configs).entries()) {
    const name = String((sds as JsonObject).name ?? '');
    const secret = snap.secrets.get(name);
    const tc = secret && isObj(secret.tls_certificate) ? (secret.tls_certificate as JsonObject) : undefined;
    if (!tc) throw new MissingSecretError(`${where}.common_tls_context.tls_certificate_sds_secret_configs[${i}]: secret "${name}" with a tls_certificate is not known`);
    certs.push(certPair(tc, `secret ${name}.tls_certificate`));
  }
  if (certs.length === 0) throw new Error(`${where}.common_tls_context: a TLS listener needs tls_certificates or tls_certificate_sds_secret_configs`);
  let ca: string | Buffer | undefined;
  const vc = common.validation_context;
  if (isObj(vc) && isObj((vc as JsonObject).trusted_ca)) ca = dataSource((vc as JsonObject).trusted_ca as JsonObject, `${where}.common_tls_context.validation_context.trusted_ca`);
  const vcs = common.validation_context_sds_secret_config;
  if (isObj(vcs)) {
    const name = String((vcs as JsonObject).name ?? '');
    const s = snap.secrets.get(name);
    const v = s && isObj(s.validation_context) ? (s.validation_context as JsonObject) : undefined;
    if (!v || !isObj(v.trusted_ca)) throw new MissingSecretError(`${where}.common_tls_context.validation_context_sds_secret_config: secret "${name}" with a validation_context.trusted_ca is not known`);
    ca = dataSource(v.trusted_ca as JsonObject, `secret ${name}.validation_context.trusted_ca`);
  }
  const options: tls.SecureContextOptions = {
    cert: certs.map((c) => c.cert),
    key: certs.map((c) => c.key),
    ...(ca ? { ca } : {}),
  };
  tls.createSecureContext(options); // fails now, with the listener named, on a bad key or certificate
  const alpn = arr(common.alpn_protocols).map(String);
  return { options, alpn: alpn.length ? alpn : ['h2', 'http/1.1'], requestCert: ctxJson.require_client_certificate === true || ca !== undefined };
}

/**
 * What the SDS secrets a transport socket references currently hold, as a string: when it changes
 * (a rotated certificate, a new root), the listener swaps its SecureContext for new handshakes.
 */
export function sdsSecretsKey(transportSocket: JsonObject, snap: ProxySnapshot): string {
  const ctxJson = (isObj(transportSocket.typed_config) ? transportSocket.typed_config : transportSocket) as JsonObject;
  const common = (isObj(ctxJson.common_tls_context) ? ctxJson.common_tls_context : {}) as JsonObject;
  const names = arr(common.tls_certificate_sds_secret_configs).map((s) => String((s as JsonObject).name ?? ''));
  const vcs = common.validation_context_sds_secret_config;
  if (isObj(vcs)) names.push(String((vcs as JsonObject).name ?? ''));
  if (names.length === 0) return '';
  return JSON.stringify(names.map((n) => snap.secrets.get(n) ?? null));
}

function certPair(c: Json, where: string): { cert: string | Buffer; key: string | Buffer } {
  if (!isObj(c)) throw new Error(`${where}: must be an object`);
  const o = c as JsonObject;
  if (!isObj(o.certificate_chain)) throw new Error(`${where}.certificate_chain: required`);
  if (!isObj(o.private_key)) throw new Error(`${where}.private_key: required`);
  return { cert: dataSource(o.certificate_chain as JsonObject, `${where}.certificate_chain`), key: dataSource(o.private_key as JsonObject, `${where}.private_key`) };
}

/** envoy.config.core.v3.DataSource. */
function dataSource(d: JsonObject, where: string): string | Buffer {
  if (typeof d.inline_string === 'string') return d.inline_string;
  if (typeof d.inline_bytes === 'string') return Buffer.from(d.inline_bytes, 'base64');
  if (typeof d.filename === 'string') {
    try {
      return fs.readFileSync(d.filename);
    } catch (err) {
      throw new Error(`${where}.filename: cannot read ${d.filename}: ${(err as Error).message}`);
    }
  }
  throw new Error(`${where}: needs filename, inline_string or inline_bytes`);
}

function isObj(v: Json | undefined): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function arr(v: Json | undefined): Json[] {
  return Array.isArray(v) ? v : [];
}
