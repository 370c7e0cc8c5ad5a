-- CreateTable
CREATE TABLE "ProxyStatus" (
    "proxyId" TEXT NOT NULL,
    "replicaId" TEXT NOT NULL,
    "namespace" TEXT NOT NULL,
    "status" JSONB NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ProxyStatus_pkey" PRIMARY KEY ("proxyId")
);

-- CreateIndex
CREATE INDEX "ProxyStatus_replicaId_idx" ON "ProxyStatus"("replicaId");

-- CreateIndex
CREATE INDEX "ProxyStatus_updatedAt_idx" ON "ProxyStatus"("updatedAt");
