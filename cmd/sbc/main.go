// Command sbc: see internal/cli/sbccli (the lab image runs it as siplabd).
package main

import "github.com/siplab/siplab/internal/cli/sbccli"

func main() { sbccli.Main() }
