# keywrap for Cloud Run: build with dev dependencies, ship only compiled output and production dependencies.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json openapi.yaml ./
COPY src ./src
COPY routes ./routes
# The encrypt and decrypt commands are built from the client package's sources.
COPY client/src ./client/src
RUN npm run build && npm prune --omit=dev

FROM node:24-slim
ENV NODE_ENV=production
# A heap sized for the 512 MiB instance: with V8's defaults Node 24's heap grows to ~320 MiB of RSS with
# the default L1 cache full (100,000 DEKs); with these, 188 MiB. keywrap refuses to start when
# KEYWRAP_CACHE_MAX_ENTRIES needs more heap than this (src/config/heap-budget.ts).
ENV NODE_OPTIONS="--max-old-space-size=256 --max-semi-space-size=16"
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root bin ./bin
# The image's files belong to root; the service runs as the unprivileged user the base image provides.
USER node
EXPOSE 8080
# Exec form: node is PID 1 and receives Cloud Run's SIGTERM directly.
CMD ["node", "dist/src/server.js"]
