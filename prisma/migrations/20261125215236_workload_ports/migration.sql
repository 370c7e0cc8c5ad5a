-- AlterTable
ALTER TABLE "Workload" ADD COLUMN     "ports" JSONB NOT NULL DEFAULT '{}';
