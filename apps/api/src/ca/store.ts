import type { PrismaClient } from '../generated/prisma/client.ts';
import { SYSTEM } from '../auth/service.ts';
import { certificateDigest, generateRoot, issuerFromStoredRoot, type CaIssuer } from './issuer.ts';
import { CaKeyError, open, seal, type Kek } from './kek.ts';
import { x509 } from './x509.ts';

// The generated root, kept in the database (one row, id 1) with its key sealed under the KEK.

const ROOT_ID = 1;

/**
 * Loads the stored root, generating it on the very first start. Replicas starting together on one
 * database race to insert row 1: the primary key lets exactly one win; everyone then reads it.
 */
export async function loadOrCreateRoot(prisma: PrismaClient, kek: Kek): Promise<{ issuer: CaIssuer; created: boolean }> {
  let created = false;
  let row = await prisma.caRoot.findUnique({ where: { id: ROOT_ID } });
  if (!row) {
    const { certificate, pkcs8 } = await generateRoot();
    const certificatePem = certificate.toString('pem');
    try {
      await prisma.$transaction(async (tx) => {
        await tx.caRoot.create({ data: { id: ROOT_ID, certificatePem, keyCiphertext: new Uint8Array(seal(kek, pkcs8, certificateDigest(certificate))), kekFingerprint: kek.fingerprint, createdBy: SYSTEM.name } });
        await tx.auditEvent.create({
          data: { actor: SYSTEM.name, actorKind: SYSTEM.kind, action: 'ca.root-created', details: { serial: certificate.serialNumber, subject: certificate.subject, notAfter: certificate.notAfter.toISOString(), kekFingerprint: kek.fingerprint } },
        });
      });
      created = true;
    } catch (err) {
      if ((err as { code?: string }).code !== 'P2002') throw err;
      // Another replica stored its root first: use that one.
    } finally {
      pkcs8.fill(0);
    }
    row = await prisma.caRoot.findUnique({ where: { id: ROOT_ID } });
    if (!row) throw new Error('the CA root vanished right after it was stored');
  }
  if (row.kekFingerprint !== kek.fingerprint) {
    throw new CaKeyError(
      `the CA private key in the database was sealed with key-encryption key ${row.kekFingerprint}, but this control plane has ${kek.fingerprint} (from ${kek.source}); ` +
        'start every replica with the same TERN_CA_KEY_ENCRYPTION_KEY (or TERN_CA_KEY_ENCRYPTION_KEY_FILE)',
    );
  }
  const certificate = new x509.X509Certificate(row.certificatePem);
  const pkcs8 = open(kek, Buffer.from(row.keyCiphertext), certificateDigest(certificate));
  return { issuer: await issuerFromStoredRoot(row.certificatePem, pkcs8), created };
}
