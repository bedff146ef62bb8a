package main

import (
	"context"
	"os"

	"github.com/siplab/siplab/lab/browsersite"
	"github.com/siplab/siplab/lab/exercise"
	"github.com/siplab/siplab/lab/labctl"
)

// webphoneCmd is `siplab webphone call <user> <target> ...`: a browser call
// from the browser site (headless Chromium behind router-w), the same one
// the ICE exercises' steps and checks place.
func webphoneCmd(ctx context.Context, r *labctl.Runner, args []string) error {
	return browsersite.Command(ctx, &exercise.DockerLab{R: r}, args, os.Stdout)
}
