package pgtest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// Container settings. The database is never named "postgres": pgtestdb
// connects to it as its admin database, and testcontainers' snapshot
// feature (should anyone use it) cannot work on a database named so.
const (
	containerImage    = "postgres:16-alpine"
	containerDatabase = "tiyn"
	containerUser     = "postgres"
	containerPassword = "postgres"
)

// DockerProbeTimeout bounds the question "does a Docker engine answer?". A
// missing socket is detected at once; the bound is for an engine (or a
// DOCKER_HOST) that accepts and hangs.
const DockerProbeTimeout = 3 * time.Second

// ContainerStartTimeout bounds pulling the image and starting the server.
// A first pull over a slow line takes a while; a start that takes longer
// than this is broken.
const ContainerStartTimeout = 3 * time.Minute

// startContainer starts the one PostgreSQL container of this test binary and
// returns its admin URL. It is called at most once (under choose's
// sync.Once). The container is not tied to any test's cleanup — the first
// test ending must not take the server from the others — and is removed by
// testcontainers' reaper (Ryuk) when the test binary exits; set
// TESTCONTAINERS_RYUK_DISABLED=true only where the CI host cleans up itself.
func startContainer() (string, error) {
	if err := dockerHealthy(); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), ContainerStartTimeout)
	defer cancel()
	ctr, err := tcpostgres.Run(ctx, containerImage,
		tcpostgres.WithDatabase(containerDatabase),
		tcpostgres.WithUsername(containerUser),
		tcpostgres.WithPassword(containerPassword),
		tcpostgres.BasicWaitStrategies(),
		// A throwaway server: durability buys nothing and costs every
		// commit a flush.
		testcontainers.WithCmd("postgres",
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off"),
	)
	if err != nil {
		if ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
		return "", fmt.Errorf("start %s: %w", containerImage, err)
	}
	raw, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		_ = testcontainers.TerminateContainer(ctr)
		return "", fmt.Errorf("address of %s container: %w", containerImage, err)
	}
	return raw, nil
}

// errNoDocker is reported when no Docker engine answers.
var errNoDocker = errors.New("no Docker engine answers")

// dockerHealthy reports whether a Docker engine answers, quietly and within
// DockerProbeTimeout. testcontainers panics when it finds no Docker host
// (its SkipIfProviderIsNotHealthy recovers the same way) and its provider
// uses its own background context, so the probe runs in a goroutine that a
// hung engine cannot hold past the timeout.
func dockerHealthy() error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("%w: %v", errNoDocker, r)
			}
		}()
		provider, err := testcontainers.ProviderDefault.GetProvider()
		if err != nil {
			done <- fmt.Errorf("%w: %w", errNoDocker, err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), DockerProbeTimeout)
		defer cancel()
		// Health closes the provider.
		if err := provider.Health(ctx); err != nil {
			done <- fmt.Errorf("%w: %w", errNoDocker, err)
			return
		}
		done <- nil
	}()
	timer := time.NewTimer(DockerProbeTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("%w within %s", errNoDocker, DockerProbeTimeout)
	}
}
