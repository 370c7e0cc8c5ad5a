/**
 * A small certificate authority for the identity tests: real keys and certificates made with
 * @peculiar/x509, serving Istio's CreateCertificate over a real grpc-js server on loopback. It
 * stands in for the control plane (apps/api's CA is exercised end to end in e2e/).
 */
import { webcrypto, X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { decodeSvidCredential, istioCertificateServiceDefinition, PROXY_ID_METADATA, TRUST_BUNDLE_METADATA, verifySvidSignature, type CreateCertificateHandler } from '@tern/xds';
import type * as X509 from '@peculiar/x509';
import { loadX509 } from '../src/identity/x509.ts';

const x509 = await loadX509();

type Keys = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface TestRoot {
  cert: X509.X509Certificate;
  keys: Keys;
  pem: string;
}

let serial = 1;
const nextSerial = () => (serial++).toString(16).padStart(8, '0');

export async function makeRoot(name: string, notBefore = new Date(Date.now() - 60_000), notAfter = new Date(Date.now() + 86_400_000)): Promise<TestRoot> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as Keys;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: `CN=${name}`,
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: ALG,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return { cert, keys, pem: cert.toString('pem') };
}

export interface IssuedRecord {
  serial: string;
  sans: string[];
  token: string;
  validity: number;
}

export interface TestCa {
  address: string;
  root: TestRoot;
  issued: IssuedRecord[];
  /** Lifetime of issued certificates (ms). */
  lifetimeMs: number;
  /** When set, every call fails with this status. */
  failWith: grpc.status | undefined;
  /** Tokens accepted (any other → UNAUTHENTICATED). */
  tokens: Set<string>;
  /** Accept renewals authenticated with a current certificate (recorded with token "svid"). */
  acceptSvid: boolean;
  /** When set, sent as Tern's trust-bundle response metadata (PEM roots). */
  bundle: string[] | undefined;
  /** The `tern-proxy-id` call metadata of each call, in order. */
  proxyIds: (string | undefined)[];
  close(): Promise<void>;
}

export async function startTestCa(o: { token: string; lifetimeMs?: number; root?: TestRoot }): Promise<TestCa> {
  const server = new grpc.Server();
  const ca: TestCa = {
    address: '',
    root: o.root ?? (await makeRoot('test-root')),
    issued: [],
    lifetimeMs: o.lifetimeMs ?? 3_600_000,
    failWith: undefined,
    tokens: new Set([o.token]),
    acceptSvid: true,
    bundle: undefined,
    proxyIds: [],
    close: () => new Promise((r) => server.tryShutdown(() => r())),
  };
  const CreateCertificate: CreateCertificateHandler = (call, cb) => {
    void (async () => {
      if (ca.failWith !== undefined) return cb({ code: ca.failWith, details: 'the test CA is failing on purpose' });
      const auth = String(call.metadata.get('authorization')[0] ?? '');
      const token = auth.replace(/^Bearer\s+/i, '');
      const svid = decodeSvidCredential(token);
      if (svid) {
        const leaf = new X509Certificate(svid.leafDer);
        const ok = ca.acceptSvid && leaf.verify(new X509Certificate(ca.root.pem).publicKey) && new Date(leaf.validTo).getTime() > Date.now() && verifySvidSignature(leaf.publicKey, call.request.csr, svid.signature);
        if (!ok) return cb({ code: grpc.status.UNAUTHENTICATED, details: 'certificate credential not accepted' });
      } else if (!ca.tokens.has(token)) return cb({ code: grpc.status.UNAUTHENTICATED, details: 'join token not accepted' });
      const csr = new x509.Pkcs10CertificateRequest(call.request.csr);
      if (!(await csr.verify())) return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'bad csr signature' });
      const sanExt = csr.extensions.find((e) => e.type === '2.5.29.17');
      const sans = sanExt ? new x509.SubjectAlternativeNameExtension(sanExt.rawData).names.items.map((n) => n.value) : [];
      const s = nextSerial();
      const now = Date.now();
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: s,
        subject: [],
        issuer: ca.root.cert.subjectName,
        notBefore: new Date(now - 1000),
        notAfter: new Date(now + ca.lifetimeMs),
        publicKey: csr.publicKey,
        signingKey: (ca.root.keys as { privateKey: never }).privateKey,
        signingAlgorithm: ALG,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension(sans.map((v) => ({ type: 'url' as const, value: v })), true),
        ],
      });
      ca.issued.push({ serial: s, sans, token: svid ? 'svid' : token, validity: Number(call.request.validity_duration) });
      const v = call.metadata.get(PROXY_ID_METADATA)[0];
      ca.proxyIds.push(typeof v === 'string' ? v : undefined);
      if (ca.bundle) {
        const md = new grpc.Metadata();
        md.set(TRUST_BUNDLE_METADATA, Buffer.from(ca.bundle.join('\n')));
        call.sendMetadata(md);
      }
      cb(null, { cert_chain: [leaf.toString('pem'), ca.root.pem] });
    })().catch((err: Error) => cb({ code: grpc.status.INTERNAL, details: err.message }));
  };
  server.addService(istioCertificateServiceDefinition(), { CreateCertificate });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  ca.address = `127.0.0.1:${port}`;
  return ca;
}
