// Package carriercli holds the main of the carrier command (cmd/carrier, and
// siplabd when invoked as carrier): the lab's SIP trunk provider and its CLI.
//
//	carrier run -sip 203.0.113.40:5060 -tls 203.0.113.40:5061 \
//	    -peer 203.0.113.5:5061 -peer-transport tls -trust 203.0.113.5/32 -numbers +1555
//	carrier call +15550100 -from +15550199   # talks to the daemon over its control socket
//	carrier status
package carriercli

import (
	"fmt"
	"io"
	"os"
)

// Main runs carrier with os.Args, exactly as the standalone binary does; it
// exits the process on failure.
func Main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: carrier <command> [flags] [args]

daemon:
  run                        start the carrier switch (see: carrier run -h)

control (talk to a running carrier over -ctl, default $CARRIER_CTL or /run/siplab/carrier.sock):
  call <+E.164> [-from <+E.164>]
                             INVITE to the trunk peer: sip:<callee>@<peer>, From the caller
  answer [call]              answer a ringing inbound call (when -answer-after is 0)
  reject [call] [code]       refuse a ringing inbound call (486 default)
  hangup [call]              end a call (BYE, or CANCEL/decline if not answered)
  reset                      end every call, clear the history, settings back to startup
  ping                       OPTIONS to the peer now: up/down and round trip
  status                     trunk peer (up/down, RTT), ACL, numbers, calls with RTP statistics
  wait call-state <state> [call]
                             block until calling|ringing|early|confirmed|terminated (-timeout 30s)

[call] is the short call id from status (1, 2, ...) or a Call-ID; omitted,
the newest call that fits is used. Every control command takes -json and -ctl.
`)
}
