// Package deploy tests what deploy/ and the Dockerfile promise: the image
// builds FROM scratch out of a statically linked meridian, and
// deploy/docker-compose.yml brings up a 3-node cluster that its init service
// bootstraps, reachable from the host on 127.0.0.1 only.
//
// The package has only tests. TestCompose builds the binary (CGO_ENABLED=0)
// and an image of it under a tag of its own (checking its entrypoint, its
// unprivileged user, its /data volume and its ports), runs the compose file
// under a project name of its own with every host port chosen by docker,
// checks each is published on 127.0.0.1, waits for init to exit 0, every
// node's /health?ready=1 and three live nodes in `node status`, writes a key
// with the meridian CLI through node1 and reads it through every node, and
// removes the containers, network, volumes and image, whatever happened,
// checking that none is left.
//
// It needs a Docker engine and docker-compose (Debian's v1 tool, or the
// `docker compose` v2 plugin); without either it skips and says which is
// missing. It also skips under -short.
package deploy
