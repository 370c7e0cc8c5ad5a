-- CreateTable
CREATE TABLE "CaRoot" (
    "id" INTEGER NOT NULL DEFAULT 1,
    "certificatePem" TEXT NOT NULL,
    "keyCiphertext" BYTEA NOT NULL,
    "kekFingerprint" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "createdBy" TEXT NOT NULL,

    CONSTRAINT "CaRoot_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "JoinToken" (
    "id" UUID NOT NULL,
    "tokenHash" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "namespace" TEXT NOT NULL,
    "serviceAccount" TEXT NOT NULL,
    "maxUses" INTEGER NOT NULL,
    "uses" INTEGER NOT NULL DEFAULT 0,
    "expiresAt" TIMESTAMPTZ(3) NOT NULL,
    "revokedAt" TIMESTAMPTZ(3),
    "lastUsedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "createdBy" TEXT NOT NULL,

    CONSTRAINT "JoinToken_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "IssuedCertificate" (
    "serial" TEXT NOT NULL,
    "spiffeId" TEXT NOT NULL,
    "namespace" TEXT NOT NULL,
    "serviceAccount" TEXT NOT NULL,
    "notBefore" TIMESTAMPTZ(3) NOT NULL,
    "notAfter" TIMESTAMPTZ(3) NOT NULL,
    "issuedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "credential" TEXT NOT NULL,
    "requester" TEXT,

    CONSTRAINT "IssuedCertificate_pkey" PRIMARY KEY ("serial")
);

-- CreateIndex
CREATE UNIQUE INDEX "JoinToken_tokenHash_key" ON "JoinToken"("tokenHash");

-- CreateIndex
CREATE INDEX "JoinToken_namespace_serviceAccount_idx" ON "JoinToken"("namespace", "serviceAccount");

-- CreateIndex
CREATE INDEX "IssuedCertificate_namespace_serviceAccount_idx" ON "IssuedCertificate"("namespace", "serviceAccount");

-- CreateIndex
CREATE INDEX "IssuedCertificate_issuedAt_idx" ON "IssuedCertificate"("issuedAt");
