# Meridian's container image: the statically linked bin/meridian in an empty
# (FROM scratch) image. Nothing is pulled: the binary is built outside docker.
#
#   make docker                  # make build, then docker build -t meridian:dev .
#   docker run -d -p 127.0.0.1:26257:26257 -p 127.0.0.1:8080:8080 -v meridian-data:/data meridian:dev
#   bin/meridian kv put --host=127.0.0.1:26257 hello world
#
# deploy/docker-compose.yml runs a 3-node cluster from this image.
#
# The image holds only /meridian and an empty /data owned by the user the
# node runs as. The binary needs nothing else from the filesystem: no shell,
# no /etc/passwd (the user is numeric), no /tmp, no CA certificates (TLS is not
# implemented yet), no time zone data (logs are in UTC).

# An empty /data to copy with its owner set: scratch has no shell to mkdir or
# chown, and a directory created by WORKDIR belongs to root.
FROM scratch AS store
WORKDIR /data

FROM scratch
COPY --from=store --chown=65532:65532 /data /data
COPY bin/meridian /meridian
# A numeric unprivileged user (the "nonroot" of distroless images); /data is
# its, and a named volume mounted there starts with that owner.
USER 65532:65532
VOLUME /data
# 26257: gRPC, for clients and other nodes. 8080: HTTP (/health, /metrics,
# /debug/pprof).
EXPOSE 26257 8080
# The defaults for a container, as environment rather than CMD flags so that
# `docker run meridian:dev start --join=...` (which replaces CMD) keeps them;
# flags on the command line win over the environment.
ENV MERIDIAN_STORE=/data \
    MERIDIAN_LISTEN_ADDR=0.0.0.0:26257 \
    MERIDIAN_HTTP_ADDR=0.0.0.0:8080
ENTRYPOINT ["/meridian"]
# Without --join the node bootstraps a single-node cluster at once. Multi-node
# clusters need --advertise-addr (the name other nodes dial; the default is the
# listen address, 0.0.0.0, which they cannot) and --join: see deploy/.
CMD ["start", "--insecure"]
