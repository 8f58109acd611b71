import { defineConfig } from 'prisma/config';

// Only `prisma generate` is used: migrations are hand-written SQL applied by src/storage/migrator.ts
// (Prisma's schema engine needs a download this environment cannot make).
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
});
