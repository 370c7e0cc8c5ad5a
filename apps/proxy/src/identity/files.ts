import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

// Files for proxyless gRPC clients: grpc's `file_watcher` certificate provider reads a
// certificate chain, a key and a root bundle from files and reloads them when they change. Each
// file is written whole to a temporary name and renamed over the old one, so a reader sees either
// the old or the new content, never half of one.

export const CERT_CHAIN_FILE = 'cert-chain.pem';
export const KEY_FILE = 'key.pem';
export const ROOT_CERT_FILE = 'root-cert.pem';

async function writeAtomic(dir: string, name: string, content: string, mode: number): Promise<void> {
  const tmp = path.join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await fs.writeFile(tmp, content, { mode, flag: 'wx' });
    await fs.chmod(tmp, mode); // the umask may have narrowed or the mode, never widened it
    await fs.rename(tmp, path.join(dir, name));
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Writes the three files into `dir` (created, mode 0700, if missing). Between two renames a
 * reader can see a new key with the old chain: grpc's file_watcher provider checks that key and
 * chain match and picks the pair up on its next refresh.
 */
export async function writeIdentityFiles(dir: string, f: { chainPem: string; keyPem: string; rootsPem: string }): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await writeAtomic(dir, KEY_FILE, f.keyPem, 0o600);
  await writeAtomic(dir, CERT_CHAIN_FILE, f.chainPem, 0o644);
  await writeAtomic(dir, ROOT_CERT_FILE, f.rootsPem, 0o644);
}
