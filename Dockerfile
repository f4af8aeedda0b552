# The Burrow installer image for the Helm chart's DaemonSet: /payload is the shim payload
# (`npm run payload`: the shim with its own node binary, the native library and what it links
# beyond glibc) and its installer, /payload/bin/burrow-installer. Build it on the architecture
# it is for (the payload's node binary comes from the npm package node-linux-<arch>):
#   docker build -t <registry>/burrow-installer:0.1.0 .

FROM node:20-bookworm AS build
# Rust from Debian, with the crates the native library uses as Debian packages (crates.io is
# not used: native/.cargo/config.toml points cargo at /usr/share/cargo/registry).
RUN apt-get update \
 && apt-get install -y --no-install-recommends cargo rustc pkg-config libseccomp-dev \
      librust-libc-dev librust-serde-dev librust-serde-derive-dev librust-serde-json-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY protos ./protos
COPY native ./native
COPY shim ./shim
COPY installer ./installer
COPY e2e ./e2e
COPY test ./test
RUN npm run build && npm run payload

# The installer runs node from the payload; the image adds nsenter (util-linux), test and
# readlink (coreutils) and the C++ runtime node links, all part of Debian's slim base.
FROM debian:bookworm-slim
COPY --from=build /src/dist/payload /payload
ENTRYPOINT ["/payload/bin/burrow-installer"]
CMD ["daemon"]
