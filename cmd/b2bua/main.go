// Command b2bua: see internal/cli/b2buacli (the lab image runs it as siplabd).
package main

import "github.com/siplab/siplab/internal/cli/b2buacli"

func main() { b2buacli.Main() }
