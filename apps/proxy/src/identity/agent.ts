import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { createIstioCertificateClient, encodeSvidCredential, PROXY_ID_METADATA, TRUST_BUNDLE_METADATA, type IstioCertificateClient, type JsonObject } from '@tern/xds';
import type { Logger } from '../log.ts';
import { tokenKind, type IdentityConfig } from './config.ts';
import { createKeyAndCsr } from './csr.ts';
import { writeIdentityFiles } from './files.ts';
import { mergeRoots, rootsPem, type TrustedRoot } from './roots.ts';
import { backoffMs, renewDelayMs } from './schedule.ts';

// The sidecar's workload identity agent (Istio's pilot-agent SDS part, in process): makes a key,
// trades a CSR plus the join token for a certificate at the control plane's CA, renews it at
// about half its lifetime, keeps the trust bundle, and hands both to the proxy as the SDS secrets
// Istio's agent serves (`default`, `ROOTCA`). docs/proxy.md "Workload identity".

/** Istio's secret names: the workload certificate and the roots to validate peers with. */
export const WORKLOAD_SECRET = 'default';
export const ROOT_SECRET = 'ROOTCA';

export interface WorkloadCert {
  keyPem: string;
  /** Leaf first, intermediates, root last, as the CA returned it. */
  chainPem: string[];
  serial: string;
  spiffeId: string | undefined;
  notBefore: Date;
  notAfter: Date;
  receivedAt: Date;
}

export interface IdentityStatus {
  state: 'pending' | 'ready' | 'error';
  expectedSpiffeId: string | undefined;
  credential: string;
  cert: Omit<WorkloadCert, 'keyPem'> | undefined;
  roots: TrustedRoot[];
  nextRenewal: Date | undefined;
  lastError: { message: string; at: Date } | undefined;
  /** Certificates obtained since start. */
  issued: number;
  /** What the last certificate was obtained with. */
  lastCredential: 'join-token' | 'service-account-token' | 'certificate' | undefined;
  consecutiveFailures: number;
}

export interface IdentityAgentOptions {
  config: IdentityConfig;
  log: Logger;
  /** Called with the new secrets after every change (new certificate, roots changed, expiry). */
  onSecrets: (secrets: Map<string, JsonObject>) => void;
  now?: () => number;
  random?: () => number;
}

export class IdentityError extends Error {
  override readonly name = 'IdentityError';
}

class CallError extends IdentityError {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

const uriSans = (c: X509Certificate): string[] => (c.subjectAltName ?? '').split(/,\s*/).filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));

/** The SDS secrets for a certificate and roots (either may be missing). */
export function identitySecrets(cert: WorkloadCert | undefined, roots: readonly TrustedRoot[]): Map<string, JsonObject> {
  const out = new Map<string, JsonObject>();
  if (cert) {
    // Leaf and intermediates: the root is the peer's to have, as in Istio's `default` secret.
    const chain = cert.chainPem.length > 1 ? cert.chainPem.slice(0, -1) : cert.chainPem;
    out.set(WORKLOAD_SECRET, { name: WORKLOAD_SECRET, tls_certificate: { certificate_chain: { inline_string: chain.map((p) => p.trimEnd() + '\n').join('') }, private_key: { inline_string: cert.keyPem } } });
  }
  if (roots.length > 0) out.set(ROOT_SECRET, { name: ROOT_SECRET, validation_context: { trusted_ca: { inline_string: rootsPem(roots) } } });
  return out;
}

/** Checks the CA's answer: the leaf holds our key, each certificate is signed by the next, the identity is the one asked for. */
export function checkIssuedChain(chainPem: readonly string[], keyPem: string, expectedSpiffeId: string | undefined): { leaf: X509Certificate; spiffeId: string | undefined } {
  if (chainPem.length === 0) throw new IdentityError('the CA returned an empty cert_chain');
  let certs: X509Certificate[];
  try {
    certs = chainPem.map((p) => new X509Certificate(p));
  } catch (err) {
    throw new IdentityError(`the CA returned a cert_chain that does not parse: ${(err as Error).message}`);
  }
  const leaf = certs[0]!;
  if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) throw new IdentityError('the certificate the CA returned is not for this proxy\'s key');
  for (let i = 0; i + 1 < certs.length; i++) {
    if (!certs[i]!.verify(certs[i + 1]!.publicKey)) throw new IdentityError(`cert_chain[${i}] is not signed by cert_chain[${i + 1}]`);
  }
  const sans = uriSans(leaf);
  if (expectedSpiffeId && !sans.includes(expectedSpiffeId)) throw new IdentityError(`the certificate is for ${sans.join(', ') || 'no URI SAN'}, not ${expectedSpiffeId}`);
  return { leaf, spiffeId: sans.find((s) => s.startsWith('spiffe://')) };
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** What a CreateCertificate call returned: the chain (leaf first) and, from Tern's CA, its trust bundle. */
interface Issued {
  chain: string[];
  bundle: string[] | undefined;
}

export class IdentityAgent {
  readonly #o: IdentityAgentOptions;
  readonly #now: () => number;
  readonly #client: IstioCertificateClient;
  #cert: WorkloadCert | undefined;
  #roots: TrustedRoot[] = [];
  #timer: NodeJS.Timeout | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;
  #nextRenewal: Date | undefined;
  #lastError: { message: string; at: Date } | undefined;
  #failures = 0;
  #issued = 0;
  #lastCredential: 'join-token' | 'service-account-token' | 'certificate' | undefined;
  #closed = false;
  #inflight: Promise<void> | undefined;

  constructor(o: IdentityAgentOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#client = createIstioCertificateClient(o.config.caAddress, o.config.caTls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure());
  }

  /** Starts obtaining the first certificate (in the background); returns at once. */
  start(): this {
    this.#schedule(0);
    return this;
  }

  get certificate(): WorkloadCert | undefined {
    return this.#cert;
  }

  get roots(): readonly TrustedRoot[] {
    return this.#roots;
  }

  status(): IdentityStatus {
    const { keyPem: _key, ...cert } = this.#cert ?? ({} as WorkloadCert);
    const t = this.#o.config.token;
    return {
      state: this.#cert ? 'ready' : this.#lastError ? 'error' : 'pending',
      expectedSpiffeId: this.#o.config.spiffeId,
      credential: t.kind === 'env' ? `join token from ${t.name}` : `${tokenKind(t)} from file ${t.path} (${t.from})`,
      cert: this.#cert ? cert : undefined,
      roots: this.#roots,
      nextRenewal: this.#nextRenewal,
      lastError: this.#lastError,
      issued: this.#issued,
      lastCredential: this.#lastCredential,
      consecutiveFailures: this.#failures,
    };
  }

  /** Obtains a certificate now (also what the timer runs). Resolves when done, whatever the outcome. */
  renewNow(): Promise<void> {
    this.#inflight ??= this.#renew().finally(() => (this.#inflight = undefined));
    return this.#inflight;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#expiryTimer);
    await this.#inflight?.catch(() => undefined);
    this.#client.close();
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    if (this.#closed) return;
    this.#nextRenewal = new Date(this.#now() + ms);
    this.#timer = setTimeout(() => void this.renewNow(), Math.min(ms, MAX_TIMER_MS));
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    const log = this.#o.log;
    const c = this.#o.config;
    try {
      const { keyPem, csrPem } = await createKeyAndCsr(c.spiffeId);
      const { chain: chainPem, bundle } = await this.#obtain(csrPem);
      const { leaf, spiffeId } = checkIssuedChain(chainPem, keyPem, c.spiffeId);
      const receivedAt = new Date(this.#now());
      const cert: WorkloadCert = { keyPem, chainPem, serial: leaf.serialNumber, spiffeId, notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo), receivedAt };
      if (this.#closed) return;
      const previous = this.#cert;
      this.#cert = cert;
      const chainRoot = chainPem.length > 1 ? [chainPem[chainPem.length - 1]!] : [];
      // A bundle from the CA is the whole truth (a root it dropped is no longer trusted); without
      // one, every root seen stays trusted until it expires.
      this.#roots = bundle ? mergeRoots([], [...bundle, ...chainRoot], receivedAt) : mergeRoots(this.#roots, chainRoot, receivedAt);
      this.#failures = 0;
      this.#lastError = undefined;
      this.#issued++;
      const delay = renewDelayMs(receivedAt.getTime(), cert.notAfter.getTime(), this.#now(), c.renew, this.#o.random);
      this.#schedule(delay);
      this.#publish();
      log.info({ spiffeId, serial: cert.serial, notAfter: cert.notAfter.toISOString(), renewInSeconds: Math.round(delay / 1000), roots: this.#roots.length, ...(previous ? { previousSerial: previous.serial } : {}) }, previous ? 'workload certificate rotated' : 'workload certificate obtained');
      if (c.outputDir) {
        try {
          await writeIdentityFiles(c.outputDir, { chainPem: chainPem.slice(0, Math.max(1, chainPem.length - 1)).map((p) => p.trimEnd() + '\n').join(''), keyPem, rootsPem: rootsPem(this.#roots) });
        } catch (err) {
          log.error({ dir: c.outputDir, err: (err as Error).message }, 'cannot write the certificate files (CERT_OUTPUT_DIR)');
        }
      }
    } catch (err) {
      if (this.#closed) return;
      this.#failures++;
      const message = err instanceof Error ? err.message : String(err);
      this.#lastError = { message, at: new Date(this.#now()) };
      const delay = backoffMs(this.#failures, this.#o.random);
      // Retry until the current certificate expires; it stays in use meanwhile.
      this.#schedule(delay);
      log.error({ err: message, retryInSeconds: Math.round(delay / 1000), keeping: this.#cert ? { serial: this.#cert.serial, notAfter: this.#cert.notAfter.toISOString() } : undefined }, this.#cert ? 'workload certificate renewal failed; keeping the current certificate' : 'cannot obtain a workload certificate; running without one');
    }
  }

  /** Hands the secrets to the proxy and arms the timer that drops the certificate or a root when it expires. */
  #publish(): void {
    this.#o.onSecrets(identitySecrets(this.#cert, this.#roots));
    clearTimeout(this.#expiryTimer);
    const ends = [this.#cert?.notAfter.getTime(), ...this.#roots.map((r) => r.notAfter.getTime())].filter((t): t is number => t !== undefined);
    if (ends.length === 0 || this.#closed) return;
    const ms = Math.max(0, Math.min(...ends) - this.#now() + 1);
    this.#expiryTimer = setTimeout(() => this.#expire(), Math.min(ms, MAX_TIMER_MS));
    this.#expiryTimer.unref();
  }

  #expire(): void {
    const now = this.#now();
    if (this.#cert && this.#cert.notAfter.getTime() <= now) {
      this.#o.log.error({ serial: this.#cert.serial, notAfter: this.#cert.notAfter.toISOString() }, 'the workload certificate expired before it could be renewed; running without one');
      this.#cert = undefined;
    }
    this.#roots = mergeRoots(this.#roots, [], new Date(now));
    this.#publish();
  }

  /**
   * Renews with the current certificate while it is valid (the CA checks it and a signature over
   * the CSR made with its key), so a single-use join token is enough; falls back to the join token
   * when that is refused (a CA without certificate renewal, or a certificate it no longer honours).
   */
  async #obtain(csrPem: string): Promise<Issued> {
    const cur = this.#cert;
    if (cur && cur.notAfter.getTime() > this.#now()) {
      const leafDer = new X509Certificate(cur.chainPem[0]!).raw;
      try {
        const issued = await this.#call(csrPem, encodeSvidCredential(leafDer, cur.keyPem, csrPem), 'certificate');
        this.#lastCredential = 'certificate';
        return issued;
      } catch (err) {
        if (!(err instanceof CallError) || err.code !== grpc.status.UNAUTHENTICATED) throw err;
        this.#o.log.warn({ err: err.message }, 'renewal with the current certificate refused; trying the join token');
      }
    }
    const t = this.#o.config.token;
    const issued = await this.#call(csrPem, await this.#token(), tokenKind(t));
    this.#lastCredential = t.kind === 'sa-file' ? 'service-account-token' : 'join-token';
    return issued;
  }

  async #token(): Promise<string> {
    const t = this.#o.config.token;
    if (t.kind === 'env') return t.value;
    // Read for every call and never kept: kubelet rotates a projected service-account token (and
    // an operator may replace a join token file); the next call must send the file's current content.
    let text: string;
    try {
      text = await readFile(t.path, 'utf8');
    } catch (err) {
      throw new IdentityError(`${t.from}: cannot read the ${tokenKind(t)} file ${t.path}: ${(err as Error).message}`);
    }
    const token = text.trim();
    if (!token) throw new IdentityError(`${t.from}: the ${tokenKind(t)} file ${t.path} is empty`);
    return token;
  }

  #call(csr: string, credential: string, what: string): Promise<Issued> {
    const c = this.#o.config;
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${credential}`);
    if (c.proxyId) md.set(PROXY_ID_METADATA, c.proxyId);
    return new Promise((resolve, reject) => {
      let bundle: string[] | undefined;
      const call = this.#client.CreateCertificate({ csr, validity_duration: c.ttlSeconds }, md, { deadline: Date.now() + 10_000 }, (err, res) => {
        if (err) {
          const code = grpc.status[err.code] ?? String(err.code);
          const hint =
            err.code !== grpc.status.UNAUTHENTICATED ? ''
            : what === 'join token' && this.#issued > 0 ? ' (the certificate expired before it could be renewed with itself, so the join token was needed again: docs/proxy.md "Workload identity")'
            : what === 'service-account token' ? ` (the token from ${this.#o.config.token.kind === 'sa-file' ? this.#o.config.token.path : 'the file'} was refused: is the CA's TokenReview on and the token's audience TERN_CA_TOKEN_AUDIENCE? docs/kubernetes-injection.md)`
            : '';
          return reject(new CallError(err.code, `CA at ${c.caAddress} refused CreateCertificate (${what}): ${code}: ${err.details || err.message}${hint}`));
        }
        resolve({ chain: res?.cert_chain ?? [], bundle });
      });
      // Tern's CA sends its whole trust bundle (the roots it issues from plus those an operator
      // added for a rotation) as response metadata; Istio's CA does not, and then only the chain's
      // root is learnt.
      call.on('metadata', (m: grpc.Metadata) => {
        const v = m.get(TRUST_BUNDLE_METADATA)[0];
        if (Buffer.isBuffer(v)) bundle = v.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? undefined;
      });
    });
  }
}
