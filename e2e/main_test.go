package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// lab is shared by the tests: TestMain brings the routers up once.
var (
	lab      *Lab
	buildLog string
)

func TestMain(m *testing.M) {
	os.Exit(setupAndRun(m))
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "e2e: FAIL: "+format+"\n", args...)
	return 1
}

func setupAndRun(m *testing.M) int {
	lock, err := Preflight("host-side namespaces for the leak test")
	if err != nil {
		return fail("%v", err)
	}
	defer lock.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	wd, err := os.Getwd()
	if err != nil {
		return fail("%v", err)
	}
	if lab, err = NewLab(wd); err != nil {
		return fail("%v (these tests need Docker and Compose; they fail rather than skip)", err)
	}
	fmt.Fprintf(os.Stderr, "e2e: %s\n", lab.ComposeCLI)
	// Never tear down somebody else's lab: refuse to start over one.
	if nodes, err := lab.R.Nodes(ctx); err != nil {
		return fail("%v", err)
	} else if len(nodes) > 0 {
		var names []string
		for _, n := range nodes {
			names = append(names, n.Container)
		}
		return fail("a %s lab is already running (%s): bring it down first (siplab down / docker-compose -p %s down)",
			Project, strings.Join(names, ", "), Project)
	}

	if err := lab.R.BuildBinaries(ctx); err != nil {
		return fail("build binaries: %v", err)
	}
	// The offline path: legacy builder, prebuilt target, no pull.
	lab.R.Env = []string{"LAB_TARGET=prebuilt", "DOCKER_BUILDKIT=0", "COMPOSE_DOCKER_CLI_BUILD=0"}
	var build strings.Builder
	lab.R.Stdout = &build
	err = lab.R.Compose(ctx, "build", "router-a")
	lab.R.Stdout = nil
	if buildLog = build.String(); err != nil {
		return fail("compose build: %v\n%s", err, buildLog)
	}

	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer dcancel()
		if err := lab.RemoveExtras(dctx); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: teardown extras:", err)
		}
		if err := lab.R.Compose(dctx, "down", "--remove-orphans", "--volumes"); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: teardown:", err)
		}
	}()
	if err := lab.R.Compose(ctx, "up", "-d", "--no-build"); err != nil {
		return fail("compose up: %v", err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := lab.R.WaitHealthy(wctx, "router-a", "router-b", "router-w"); err != nil {
		return fail("%v", err)
	}
	if err := lab.R.WaitRegistered(wctx, func(string) {}); err != nil {
		return fail("%v", err)
	}
	return m.Run()
}
