// Package scannercli holds the main of the scanner command (cmd/scanner, and
// siplabd when invoked as scanner): the lab's SIPVicious-style attacker for
// the SBC security exercises.
//
//	scanner options  -target 203.0.113.5:5060 [-count 20] [-rate 10] [-user-agent friendly-scanner]
//	scanner register -target 203.0.113.5:5060 -user alice [-passwords 1234,password,...] [-count 100] [-rate 20]
//	scanner replay   -target 203.0.113.10:5060 -message-b64 <captured REGISTER, base64> [-count 1]
//
// It only sends to -target, from -from (default: any local address), at a
// bounded rate; it prints what came back, including the silence a blocked
// source gets.
package scannercli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/scanner"
)

// commonPasswords is what svcrack-style tools try first; the lab's real
// passwords are not on it.
const commonPasswords = "1234,12345,123456,password,admin,100,101,1000,secret,voip,sip,alice,bob,carol,qwerty,letmein"

// Main runs scanner with os.Args; it exits the process on failure.
func Main() {
	climain.Run(climain.Rules{Name: "scanner", Code: climain.Always(2)}, func(ctx context.Context) error {
		return run(ctx, os.Args[1:], os.Stdout)
	})
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || (args[0] != scanner.ModeOptions && args[0] != scanner.ModeRegister && args[0] != scanner.ModeReplay) {
		return fmt.Errorf("usage: scanner options|register|replay -target ip:port [flags] (scanner <mode> -h for flags)")
	}
	mode := args[0]
	fs := flag.NewFlagSet("scanner "+mode, flag.ContinueOnError)
	fs.SetOutput(out)
	target := fs.String("target", "", "SIP server to attack, ip:port (required)")
	from := fs.String("from", "", "local ip to send from (default: chosen by the kernel)")
	domain := fs.String("domain", "", "Request-URI / To host (default: the target ip)")
	user := fs.String("user", "", "account to attack (register)")
	passwords := fs.String("passwords", commonPasswords, "comma-separated guesses, tried in order (register)")
	message := fs.String("message-b64", "", "the captured request to replay, base64 (replay; `siplab attack <node> replay` finds it in the captures)")
	defCount := 20
	if mode == scanner.ModeReplay {
		defCount = 1
	}
	count := fs.Int("count", defCount, "attempts to make")
	rate := fs.Float64("rate", 10, "attempts per second")
	timeout := fs.Duration("timeout", 500*time.Millisecond, "wait for each answer this long")
	ua := fs.String("user-agent", scanner.DefaultUserAgent, "User-Agent to announce")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	ap, err := netip.ParseAddrPort(*target)
	if err != nil {
		return fmt.Errorf("-target %q: want ip:port: %w", *target, err)
	}
	laddr := ":0"
	if *from != "" {
		ip, err := netip.ParseAddr(*from)
		if err != nil {
			return fmt.Errorf("-from %q: %w", *from, err)
		}
		laddr = netip.AddrPortFrom(ip, 0).String()
	}
	msg, err := base64.StdEncoding.DecodeString(*message)
	if err != nil {
		return fmt.Errorf("-message-b64: %w", err)
	}
	conn, err := net.ListenPacket("udp4", laddr)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer conn.Close()
	var guesses []string
	for _, p := range strings.Split(*passwords, ",") {
		if p = strings.TrimSpace(p); p != "" {
			guesses = append(guesses, p)
		}
	}
	rep, err := scanner.Run(ctx, conn, scanner.Config{
		Target: ap, Mode: mode, Domain: *domain, User: *user, Passwords: guesses,
		Count: *count, Rate: *rate, Timeout: *timeout, UserAgent: *ua, Message: msg,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.Write(out)
	return nil
}
