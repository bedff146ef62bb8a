// Command scanner: see internal/cli/scannercli (the lab image runs it as siplabd).
package main

import "github.com/siplab/siplab/internal/cli/scannercli"

func main() { scannercli.Main() }
