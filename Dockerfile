# jobprogress-proxy: multi-stage image. Build with the dev dependencies, run with the runtime ones only.
#   docker build -t jobprogress-proxy .
#   docker run --init -p 8080:8080 -e JOBPROGRESS_TOKEN=eyJ0eXAi... jobprogress-proxy

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    CACHE_DIR=/var/lib/jobprogress-proxy \
    # glibc: fewer arenas, big buffers via mmap, returned on free (see the README's memory notes)
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=32768
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# the cache and the spent budget survive restarts here (README, Restarts and deploys); owned by node,
# 0700, so that a named volume mounted on it starts with the same owner and mode
RUN mkdir -p /var/lib/jobprogress-proxy && chown node:node /var/lib/jobprogress-proxy && chmod 700 /var/lib/jobprogress-proxy
VOLUME /var/lib/jobprogress-proxy
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node directly, not npm: npm does not pass SIGTERM on to its child, so there would be no graceful
# shutdown. The proxy handles SIGTERM/SIGINT itself (close-with-grace); `docker run --init` (or
# `init: true` in compose) adds tini to reap zombies and forward signals, which is still good practice.
# the Node flags are the start script's (README, Compression and memory)
CMD ["node", "--max-semi-space-size=2", "--heap-growing-percent=10", "dist/server.js"]
