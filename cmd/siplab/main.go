// Command siplab is the trainer's and intern's handle on the lab: bring it
// up and down, see every node, drive the phones and turn the NAT knobs live.
//
//	siplab up | down | reset | status [-json]
//	siplab ladder [call] | doctor [-call N] | explain <call>.<message> | message [<call>.<message>]
//	siplab call alice bob | answer bob | reject bob 486 | hangup alice | cancel alice | dtmf alice 123
//	siplab set <node> <setting> <value> | get <node>
//	siplab exec <node> <args...>
//	siplab scenario list | basic | busy | cancel | auth | hold | transfer | mismatch | no-ack
//	siplab attack <node> options|register|replay [scanner flags]
//	siplab exercise list | start ID | status | hint | check [-all] [-json] [-answer V] | solve | reset | doc
//	siplab demo up | demo call alice bob      (no Docker: everything on 127.0.0.x)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/lab/labops"
)

const usage = `usage: siplab <command> [flags] [args]

The lab (Docker):
  up                      build, start, wait until every phone is registered
  down                    stop and remove the lab's containers and networks
  reset [-json]           back to a fresh up in seconds, no restarts: settings, calls, bindings,
                          NAT mappings, voicemail, subscriptions, SBC blocks, stray processes;
                          ladder/doctor start again from here (captures/boundary)
  status [-json]          every node: role, addresses, registrations, calls, NAT mappings

Phones:
  call <phone> <target>   place a call (target: user or sip: URI)
  answer <phone>          answer the ringing call
  reject <phone> [code]   reject the ringing call (486 default, 603, ...)
  cancel <phone>          cancel the outgoing call while it rings
  hangup <phone>          hang up
  dtmf <phone> <digits>   send RFC 4733 DTMF
  hold <phone> | resume <phone>        put the call on hold (re-INVITE a=sendonly) and back
  transfer <phone> <target>            blind transfer (REFER)
  options <phone> [uri]   send OPTIONS (SIP ping)

Live toggles (no restart):
  set <node> <setting> <value>   e.g. set alice rport off, set proxy rport ignore,
                                 set router-a preset symmetric, set router-a pinhole 20s
  get <node>                     show the node's settings

Call flows (training page module 05), played live, then their ladder:
  scenario list                  the flows and the messages each ladder shows
  scenario <name> [-json] [-html out.html]
                                 basic | busy | cancel | auth | hold | transfer | mismatch | no-ack

Reading the captures (captures/, or -dir <folder>):
  ladder [call]                            one call across every capture point (default: the last call)
  ladder -html [-o f.html] [call]          the same as a page for the projector (ladder.html here)
  ladder -list [-all]                      the numbered calls (-all: also registrations and pings)
  doctor [-call N] [-since 5m] [-notes]    diagnose the classic failures, naming the evidence (exit 1 on an error)
  explain <call>.<message>                 every line of one message explained, e.g. explain 3.2
  message [<call>.<message>]               one message (default: the last call's answered INVITE) at every
                                           capture point: as sent, as received, what each hop changed

Security (an attacker on the internet, 203.0.113.66):
  attack <node> options|register|replay [scanner flags]   e.g. attack sbc register -user alice -count 60 -rate 20
                          SIPVicious-style sweep or password guessing against the node's
                          internet address (scanner -h lists the flags); replay [-user alice]
                          re-sends the user's last Authorization from captures/proxy.pcapng

Exercises (docs/exercises.md):
  exercise list | start <id> | status | hint | check [-all] [-json] [-answer V] | solve | reset | doc
                          live exercises: start breaks the lab, check reads it (PASS/FAIL
                          with the evidence; -answer for a value read off the lab), solve applies
                          the documented fix, reset is siplab reset

Classroom console (docs/console.md):
  console [-listen 127.0.0.1:8080]     the live lab in a web browser: topology, state, live ladder,
                                       buttons for every verb, exercises, doctor (a token off loopback)

Browser phone (docs/webrtc.md):
  webphone call <user> <target> [-policy relay] [-hold 10s]   headless Chromium behind router-w calls (root, chromium)

Anything else:
  exec <node> <args...>   run the node's daemon binary with args (it is a scratch image)

Without Docker (127.0.0.x):
  demo up                 run registrar, proxy, alice and bob in this terminal
  demo call <from> <to>   call between demo phones and print media statistics
`

var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "siplab:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// offlineVerbs need no lab folder.
var offlineVerbs = map[string]func(context.Context, []string) error{
	"demo":     demo,
	"exercise": exerciseCmd,
}

// readVerbs read captures and need no Docker: they work on a copied
// captures/ folder.
var readVerbs = map[string]func([]string) error{
	"ladder":  ladderCmd,
	"doctor":  doctorCmd,
	"explain": explainCmd,
	"message": messageCmd,
}

// labVerbs drive the lab through its Runner (runner).
var labVerbs = map[string]func(context.Context, *labctl.Runner, []string) error{
	"up":       up,
	"down":     down,
	"reset":    resetCmd,
	"scenario": scenarioCmd,
	"status":   status,
	"console":  consoleCmd,
	"set":      set,
	"get":      get,
	"exec":     execNode,
	"attack":   attack,
	"webphone": webphoneCmd, // webphone.go
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command", errUsage)
	}
	cmd, rest := args[0], args[1:]
	if cmd == "-h" || cmd == "--help" || cmd == "help" {
		fmt.Print(usage)
		return nil
	}
	if f, ok := offlineVerbs[cmd]; ok {
		return f(ctx, rest)
	}
	if f, ok := readVerbs[cmd]; ok {
		return f(rest)
	}
	r, err := runner()
	if err != nil {
		return err
	}
	if f, ok := labVerbs[cmd]; ok {
		return f(ctx, r, rest)
	}
	if labops.IsPhoneVerb(cmd) {
		return phoneCommand(ctx, r, cmd, rest)
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

// runner points at the lab's folder: the one the running lab was started
// from (found by its containers' labels), else the repository around the
// working directory. Verbs that only talk to a running lab work from any
// directory, so Dir may be empty; `up` needs the repository and checks.
func runner() (*labctl.Runner, error) {
	dir, err := labctl.FindRoot()
	if err != nil {
		dir = ""
	}
	return &labctl.Runner{Dir: dir, Stdout: os.Stdout}, nil
}
