// Command stunturn: see internal/cli/stunturncli (the lab image runs it as siplabd).
package main

import "github.com/siplab/siplab/internal/cli/stunturncli"

func main() { stunturncli.Main() }
