// Command registrar: see internal/cli/registrarcli (the lab image runs it as siplabd).
package main

import "github.com/siplab/siplab/internal/cli/registrarcli"

func main() { registrarcli.Main() }
