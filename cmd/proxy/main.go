// Command proxy: see internal/cli/proxycli (the lab image runs it as siplabd).
package main

import "github.com/siplab/siplab/internal/cli/proxycli"

func main() { proxycli.Main() }
