import { webcrypto } from 'node:crypto';

// @peculiar/x509 resolves its parsers through tsyringe, which needs the Reflect metadata polyfill
// loaded first, and it signs through WebCrypto (Node's own here). Loaded on first use only, and
// left out of the proxy's bundle (apps/proxy/scripts/bundle.mjs): with its ASN.1 dependencies it
// is ~800 KB of code, ~7 MB of RSS in every sidecar, and only sidecars with an identity need it.

type X509 = typeof import('@peculiar/x509');
let loaded: Promise<X509> | undefined;

export function loadX509(): Promise<X509> {
  loaded ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    // `never`: the one-argument overload whichever lib (DOM or not) types WebCrypto with.
    x509.cryptoProvider.set(webcrypto as never);
    return x509;
  })();
  return loaded;
}
