// @peculiar/x509 resolves its parsers through tsyringe, which needs the Reflect metadata polyfill
// loaded first, and it signs through WebCrypto (Node's own here). Every identity module imports
// the library from this file so both hold wherever it is used (as apps/api/src/ca/x509.ts does).
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
