# The Tern control plane, bundled into one module (apps/api/scripts/bundle.mjs) as `npm run start:api` runs it.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json prisma.config.ts tsconfig.json ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY packages ./packages
COPY apps/api ./apps/api
COPY apps/proxy/package.json ./apps/proxy/package.json
COPY apps/web/package.json ./apps/web/package.json
RUN npm ci --no-audit --no-fund && npm cache clean --force && node apps/api/scripts/bundle.mjs && mkdir /data && chown node /data
# Without DATABASE_URL the embedded database lives in /data (mount a volume there to keep it).
ENV TERN_API_HOST=0.0.0.0 TERN_API_PORT=8080 TERN_XDS_HOST=0.0.0.0 TERN_XDS_PORT=15010 TERN_DATA_DIR=/data NODE_ENV=production
VOLUME /data
EXPOSE 8080 15010
USER node
# The environment and node flags of `npm run start:api` (package.json). glibc serves allocations of 128 KB
# and more (xDS response buffers) from mmap, returned to the system when freed, trims the heap top
# above 1 MB, and keeps two arenas instead of one per thread that ever allocated (V8's and libuv's
# helpers): the control plane's RSS then follows what it uses (docs/benchmarks.md).
ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=1048576
# The node flags of `npm run start:api` (package.json): a 4 MB young generation keeps the heap ~20 MB smaller
# with a thousand proxies connected, for a few percent more collection work (docs/benchmarks.md).
CMD ["node", "--max-semi-space-size=4", "apps/api/dist/tern-api.mjs"]
