import { defineConfig } from 'prisma/config';

// The URL is only used by the Prisma CLI (migrate deploy/status against a real PostgreSQL).
// The control plane itself picks PGlite or PostgreSQL at run time (apps/api/src/store/db.ts).
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://localhost/tern' },
});
