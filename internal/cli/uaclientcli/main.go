// Package uaclientcli holds the main of the uaclient command (cmd/uaclient, and siplabd when
// invoked as uaclient): the lab's softphone daemon and its CLI.
//
//	uaclient run -name alice -user alice -password secret -proxy 203.0.113.10:5060
//	uaclient call bob          # talks to the daemon over its control socket
//	uaclient status
//
// The CLI verbs are subcommands of the daemon binary because a FROM scratch
// image has nothing else to run: `docker exec alice /uaclient status`.
package uaclientcli

import (
	"fmt"
	"io"
	"os"
)

// Main runs uaclient with os.Args, exactly as the standalone binary does; it
// exits the process on failure.
func Main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: uaclient <command> [flags] [args]

daemon:
  run                       start the phone (see: uaclient run -h)

control (talk to a running phone over -ctl, default $UACLIENT_CTL or /run/siplab/uaclient.sock):
  register                  REGISTER now and keep refreshing
  unregister                remove every binding of our AOR (Contact: *, Expires: 0)
  reset [-calls]            back to the startup state: stray CLI processes here stopped, calls and
                            subscriptions ended, history cleared, settings at their startup values,
                            all bindings removed and one fresh REGISTER
  call <user|sip-uri>       place a call through the proxy
  answer [call]             answer a ringing call
  reject [call] [code]      reject a ringing call (486 default; 603, 480, ...)
  cancel [call]             CANCEL our ringing outgoing call (expect 487)
  hangup [call]             end a call (BYE, or CANCEL/decline if not answered)
  dtmf [call] <digits>      send DTMF (0-9 * # A-D): RFC 4733, or SIP INFO with dtmf_mode info
  hold [call]               put a call on hold (re-INVITE a=sendonly, or inactive: hold_mode)
  resume [call]             take it off hold (re-INVITE a=sendrecv)
  update [call]             re-offer our current SDP in an UPDATE (RFC 3311), e.g. after set sdp_addr
  message <target> <text>   send a SIP MESSAGE (text/plain); received ones show in status
  transfer [call] <target>  blind transfer: REFER with Refer-To; waits for the final NOTIFY
  transfer -with <consult> [call]
                            attended transfer: Refer-To carries Replaces for the consult call
  subscribe <target> dialog|message-summary
                            SUBSCRIBE (BLF lamp / MWI), refreshed; NOTIFYs show in status
  unsubscribe [sub]         SUBSCRIBE Expires: 0
  options [target]          send OPTIONS (to the proxy when no target) and show the answer
  set <name> <value>        change a live setting (next message uses it)
  get [name]                show settings with what each one breaks
  status                    registration, calls, SDP addresses, media stats
  wait <condition>          block until: registered | unregistered | registration-failed
                            | call-state <state> [call]   (-timeout 30s)

[call] is the short call id from status (1, 2, ...) or a Call-ID; omitted,
the newest call that fits is used. Every control command takes -json and -ctl.
`)
}
