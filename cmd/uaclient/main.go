// Command uaclient: see internal/cli/uaclientcli (the lab image runs it as siplabd).
package main

import "github.com/siplab/siplab/internal/cli/uaclientcli"

func main() { uaclientcli.Main() }
