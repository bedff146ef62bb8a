// Command carrier: see internal/cli/carriercli (the lab image runs it as siplabd).
package main

import "github.com/siplab/siplab/internal/cli/carriercli"

func main() { carriercli.Main() }
