-- AlterTable
ALTER TABLE "IssuedCertificate" ADD COLUMN     "proxyId" TEXT;

-- CreateIndex
CREATE INDEX "IssuedCertificate_proxyId_issuedAt_idx" ON "IssuedCertificate"("proxyId", "issuedAt");
