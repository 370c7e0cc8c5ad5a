import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

// The key-encryption key (KEK): the CA's private key is stored in the database only sealed with it
// (AES-256-GCM), and the KEK itself never goes to the database. docs/security.md.

export class CaKeyError extends Error {
  override readonly name = 'CaKeyError';
}

export interface Kek {
  key: Buffer;
  /** First 16 hex digits of SHA-256(key): names the KEK without revealing it. */
  fingerprint: string;
  /** Where it came from, for messages (never the key). */
  source: string;
}

export interface KekOptions {
  /** TERN_CA_KEY_ENCRYPTION_KEY: base64 of 32 bytes. */
  value?: string | undefined;
  /** TERN_CA_KEY_ENCRYPTION_KEY_FILE: a file holding the same. */
  file?: string | undefined;
  /** Where a KEK is generated when neither is given. */
  generatePath: string;
}

export const kekFingerprint = (key: Buffer) => createHash('sha256').update(key).digest('hex').slice(0, 16);

export function parseKek(text: string, source: string): Kek {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/=_-]+$/.test(trimmed)) throw new CaKeyError(`${source} must be base64 of exactly 32 bytes (it is not base64)`);
  const key = Buffer.from(trimmed, 'base64');
  if (key.length !== 32) throw new CaKeyError(`${source} must be base64 of exactly 32 bytes (it decodes to ${key.length} bytes)`);
  return { key, fingerprint: kekFingerprint(key), source };
}

/**
 * The KEK from the environment, a file, or — when neither is given — `generatePath`, created with
 * mode 0600 on first use. Replicas that start together on one data directory race on that file:
 * exclusive creation makes one of them write it and the others read it.
 */
export function loadKek(opts: KekOptions): { kek: Kek; generated: boolean } {
  if (opts.value) return { kek: parseKek(opts.value, 'TERN_CA_KEY_ENCRYPTION_KEY'), generated: false };
  if (opts.file) {
    let text: string;
    try {
      text = fs.readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new CaKeyError(`TERN_CA_KEY_ENCRYPTION_KEY_FILE ${opts.file} cannot be read: ${(err as Error).message}`);
    }
    return { kek: parseKek(text, `TERN_CA_KEY_ENCRYPTION_KEY_FILE (${opts.file})`), generated: false };
  }
  const source = `the generated key-encryption key file ${opts.generatePath}`;
  fs.mkdirSync(path.dirname(opts.generatePath), { recursive: true });
  try {
    fs.writeFileSync(opts.generatePath, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    return { kek: parseKek(fs.readFileSync(opts.generatePath, 'utf8'), source), generated: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new CaKeyError(`cannot create ${opts.generatePath}: ${(err as Error).message}`);
  }
  return { kek: parseKek(fs.readFileSync(opts.generatePath, 'utf8'), source), generated: false };
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** iv | tag | ciphertext. `aad` binds the sealed key to what it belongs to (the CA certificate). */
export function seal(kek: Kek, plaintext: Buffer, aad: Buffer): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek.key, iv);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ct]);
}

export function open(kek: Kek, sealed: Buffer, aad: Buffer): Buffer {
  if (sealed.length <= IV_BYTES + TAG_BYTES) throw new CaKeyError('the sealed CA key is truncated');
  const decipher = createDecipheriv('aes-256-gcm', kek.key, sealed.subarray(0, IV_BYTES));
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch {
    throw new CaKeyError(`the CA private key in the database cannot be decrypted with ${kek.source} (fingerprint ${kek.fingerprint}): wrong key, or the row was altered`);
  }
}
