// @peculiar/x509 resolves its parsers through tsyringe, which needs the Reflect metadata polyfill
// loaded first; and it signs through WebCrypto, which is Node's own here. Every CA module imports
// the library from this file so both hold wherever it is used.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import type { webcrypto as wc } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// `never`: the one-argument overload whichever lib (DOM or not) types WebCrypto with.
x509.cryptoProvider.set(webcrypto as never);

export { x509 };
export const subtle = webcrypto.subtle;

// WebCrypto types (the project compiles without the DOM lib).
export type CryptoKey = wc.CryptoKey;
export type CryptoKeyPair = wc.CryptoKeyPair;
export type SigningAlgorithm = wc.Algorithm | wc.EcdsaParams;
export type KeyImportAlgorithm = wc.EcKeyImportParams | wc.RsaHashedImportParams;
