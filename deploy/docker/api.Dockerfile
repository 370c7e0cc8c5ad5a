# The Tern control plane. Runs the TypeScript sources with tsx (no build step), like `npm start`.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json prisma.config.ts tsconfig.json ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY packages ./packages
COPY apps/api ./apps/api
COPY apps/proxy/package.json ./apps/proxy/package.json
COPY apps/web/package.json ./apps/web/package.json
RUN npm ci --no-audit --no-fund && npm cache clean --force && mkdir /data && chown node /data
# Without DATABASE_URL the embedded database lives in /data (mount a volume there to keep it).
ENV TERN_API_HOST=0.0.0.0 TERN_API_PORT=8080 TERN_XDS_HOST=0.0.0.0 TERN_XDS_PORT=15010 TERN_DATA_DIR=/data NODE_ENV=production
VOLUME /data
EXPOSE 8080 15010
USER node
CMD ["node", "--import", "tsx", "apps/api/src/main.ts"]
