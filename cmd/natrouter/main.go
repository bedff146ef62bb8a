// Command natrouter: see internal/cli/natroutercli (the lab image runs it as siplabd).
package main

import "github.com/siplab/siplab/internal/cli/natroutercli"

func main() { natroutercli.Main() }
