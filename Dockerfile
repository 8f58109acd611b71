# syntax=docker/dockerfile:1
# Mailbox connector image.
#   docker build -t mailbox-connector .
#   docker run -p 8080:8080 -e DATABASE_URL=… -e ENCRYPTION_KEYS=… -e AUDIT_HMAC_KEYS=… -e PUBLIC_URL=https://… -v anchors:/app/data mailbox-connector
# Migrations (prisma/migrations) are applied by the service itself at start.

# ---------------------------------------------------------------- build: compile TypeScript
FROM node:20-bookworm-slim AS build
WORKDIR /app
# Prisma only generates the client here; pointing the schema-engine variable at an existing file
# keeps it from downloading an engine the build does not need.
ENV PRISMA_SCHEMA_ENGINE_BINARY=/usr/local/bin/node
COPY package.json package-lock.json ./
# npm ci's postinstall (scripts/prisma-generate.mjs) generates the Prisma client from the schema.
COPY scripts ./scripts
COPY prisma ./prisma
COPY prisma.config.ts ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Generates src/generated/prisma (TypeScript); tsc then compiles it into dist/generated/prisma.
RUN npx --no-install prisma generate && npm run build

# ---------------------------------------------------------------- runtime: production deps only
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the generated client is already compiled into dist/, nothing to generate.
# --omit=optional as well: the Prisma CLI and TypeScript are development dependencies, but npm
# still installs them with --omit=dev alone, because they are also *optional* peers of
# @prisma/client (npm's "devOptional"). Optional packages are, by definition, not needed to run
# (today: pg-cloudflare for Cloudflare Workers, @pkgjs/parseargs for Node < 18.3, native speed-ups).
# CI (scripts/docker-dry-run.mjs) starts the result, so a dependency lost this way fails there.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY assets ./assets
COPY prisma/migrations ./prisma/migrations
COPY prisma/keystore-migrations ./prisma/keystore-migrations
# Embedded-database folder (used only without DATABASE_URL) must be writable by the app user.
RUN mkdir -p /app/data && chown node:node /app/data
# The official image's unprivileged user.
USER node
EXPOSE 8080
# No curl in slim images: ask /healthz with node itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "bin/mailbox-connector.js", "serve"]
