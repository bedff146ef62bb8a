package uaclient

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// WriteText prints a control-API result for people: the phone CLI and the
// host CLI show the same lines.
func WriteText(w io.Writer, verb string, out any) {
	switch v := out.(type) {
	case Status:
		printStatus(w, v)
	case RegStatus:
		printReg(w, v)
	case CallStatus:
		printCall(w, v)
	case OptionsResult:
		printOptions(w, v)
	case MessageRecord:
		printMessage(w, v)
	case SubscriptionStatus:
		printSubscription(w, v)
	case []SettingInfo:
		for _, s := range v {
			if verb == "set" {
				fmt.Fprintf(w, "%s = %s\n", s.Name, s.Value)
				continue
			}
			fmt.Fprintf(w, "%-19s %-22s %s\n", s.Name, s.Value, s.Help)
		}
	case WaitResult:
		if v.Registration != nil {
			printReg(w, *v.Registration)
		}
		if v.Call != nil {
			printCall(w, *v.Call)
		}
	default:
		fmt.Fprintf(w, "%v\n", v)
	}
}

func printStatus(w io.Writer, s Status) {
	dtmf := "off"
	if s.DTMF {
		dtmf = "on"
	}
	fmt.Fprintf(w, "phone %s (user %s): sip %s %s", s.Name, s.User, s.Transport, s.Local)
	if s.Proxy != "" {
		fmt.Fprintf(w, " -> proxy %s", s.Proxy)
	}
	fmt.Fprintf(w, "\n  tone %.0f Hz, codecs %s, dtmf %s\n", s.ToneHz, strings.Join(s.Codecs, " "), dtmf)
	printReg(w, s.Registration)
	ka := s.Keepalive
	if ka.Mode == "off" {
		fmt.Fprintln(w, "keepalive: off")
	} else {
		fmt.Fprintf(w, "keepalive: %s every %s, %d sent", ka.Mode, ka.Interval, ka.Sent)
		if ka.LastResult != "" {
			fmt.Fprintf(w, ", last %s", ka.LastResult)
		}
		fmt.Fprintln(w)
	}
	var names []string
	for n := range s.Settings {
		names = append(names, n)
	}
	slices.Sort(names)
	fmt.Fprint(w, "settings:")
	for _, n := range names {
		fmt.Fprintf(w, " %s=%s", n, s.Settings[n])
	}
	fmt.Fprintln(w)
	if len(s.Calls) == 0 {
		fmt.Fprintln(w, "calls: none")
	}
	for _, c := range s.Calls {
		printCall(w, c)
	}
	for _, m := range s.Messages {
		printMessage(w, m)
	}
	for _, sub := range s.Subscriptions {
		printSubscription(w, sub)
	}
	if m := s.MWI; m != nil {
		if m.MessagesWaiting {
			fmt.Fprint(w, "mwi: messages waiting")
		} else {
			fmt.Fprint(w, "mwi: no messages waiting")
		}
		if m.VoiceMessages != "" {
			fmt.Fprintf(w, " (voice %s)", m.VoiceMessages)
		}
		how := "subscribed"
		if m.Unsolicited {
			how = "unsolicited NOTIFY"
		}
		fmt.Fprintf(w, ", from %s at %s (%s, source %s)\n", m.From, m.Received.Format("15:04:05"), how, m.Source)
	}
}

func printSubscription(w io.Writer, s SubscriptionStatus) {
	fmt.Fprintf(w, "subscription %s %s to %s: %s", s.ID, s.Event, s.Target, s.State)
	if s.Code != 0 {
		fmt.Fprintf(w, " (%d %s)", s.Code, s.Reason)
	}
	switch {
	case s.Event == EventDialog && s.Lamp != "":
		fmt.Fprintf(w, ", lamp %s", s.Lamp)
	case s.Event == EventMessageSummary && s.MessagesWaiting != nil:
		if *s.MessagesWaiting {
			fmt.Fprint(w, ", messages waiting")
		} else {
			fmt.Fprint(w, ", no messages waiting")
		}
		if s.VoiceMessages != "" {
			fmt.Fprintf(w, " (voice %s)", s.VoiceMessages)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  call-id %s, %d NOTIFY", s.CallID, s.Notifies)
	if s.SubscriptionState != "" {
		fmt.Fprintf(w, ", last Subscription-State: %s", s.SubscriptionState)
	}
	if s.Expires != 0 {
		fmt.Fprintf(w, ", expires %d s", s.Expires)
	}
	if !s.RefreshAt.IsZero() {
		fmt.Fprintf(w, " (refresh in %d s, %d done)", max(0, int(time.Until(s.RefreshAt).Seconds())), s.Refreshes)
	}
	fmt.Fprintln(w)
	for _, d := range s.Dialogs {
		fmt.Fprintf(w, "  dialog %s %s %s", d.ID, d.Direction, d.State)
		if d.Remote != "" {
			fmt.Fprintf(w, " with %s", d.Remote)
		}
		fmt.Fprintln(w)
	}
	if s.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", s.Error)
	}
}

func printMessage(w io.Writer, m MessageRecord) {
	switch m.Direction {
	case "in":
		fmt.Fprintf(w, "message from %s at %s", m.From, m.Time.Format("15:04:05"))
		if m.Source != "" {
			fmt.Fprintf(w, " (source %s)", m.Source)
		}
		if m.Code != 0 && m.Code != 200 {
			fmt.Fprintf(w, ", answered %d %s", m.Code, m.Reason)
		}
	default:
		fmt.Fprintf(w, "message to %s at %s: %d %s", m.To, m.Time.Format("15:04:05"), m.Code, m.Reason)
	}
	fmt.Fprintf(w, "\n  %q\n", m.Text)
}

func printReg(w io.Writer, r RegStatus) {
	fmt.Fprintf(w, "registration: %s", r.State)
	if r.AOR != "" {
		fmt.Fprintf(w, " %s", r.AOR)
	}
	if r.Registrar != "" {
		fmt.Fprintf(w, " via %s", r.Registrar)
	}
	if r.State == RegRegistered {
		fmt.Fprintf(w, ", expires in %d s", r.ExpiresIn)
		if !r.RefreshAt.IsZero() {
			fmt.Fprintf(w, " (refresh in %d s)", max(0, int(time.Until(r.RefreshAt).Seconds())))
		}
	}
	if r.Code != 0 {
		fmt.Fprintf(w, ", last %d %s", r.Code, r.Reason)
	}
	fmt.Fprintln(w)
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", strings.TrimPrefix(r.Error, "uaclient: "))
	}
	if r.Contact != "" {
		fmt.Fprintf(w, "  contact sent: %s\n", r.Contact)
	}
	for _, b := range r.Bindings {
		mine := ""
		if b.Mine {
			mine = " (this phone)"
		}
		fmt.Fprintf(w, "  binding: %s expires %d s%s\n", b.Contact, b.Expires, mine)
	}
}

func printCall(w io.Writer, c CallStatus) {
	fmt.Fprintf(w, "call %s %s %s: %s", c.ID, c.Direction, c.Peer, c.State)
	if c.Code != 0 {
		fmt.Fprintf(w, " (%d %s)", c.Code, c.Reason)
	}
	if c.EndReason != "" {
		fmt.Fprintf(w, ", ended by %s: %s", c.EndedBy, c.EndReason)
	}
	fmt.Fprintf(w, "\n  call-id %s\n", c.CallID)
	if c.RemoteTarget != "" {
		fmt.Fprintf(w, "  remote target %s", c.RemoteTarget)
		if len(c.RouteSet) > 0 {
			fmt.Fprintf(w, ", route set %s", strings.Join(c.RouteSet, " "))
		}
		fmt.Fprintln(w)
	}
	if c.LocalSDP != "" || c.RemoteSDP != "" {
		fmt.Fprintf(w, "  sdp: local %s, remote %s", orDash(c.LocalSDP), orDash(c.RemoteSDP))
		if c.Codec != "" {
			fmt.Fprintf(w, ", codec %s", c.Codec)
			if c.DTMFPT != 0 {
				fmt.Fprintf(w, ", telephone-event %d", c.DTMFPT)
			}
		}
		fmt.Fprintln(w)
	}
	printCallNAT(w, c.NAT)
	if m := c.Media; m != nil {
		r := m.Received
		fmt.Fprintf(w, "  media: sent %d pkts from %s to %s; received %d pkts, lost %d (%.1f%%), jitter %.1f ms",
			m.Sent.Packets, m.SendFrom, m.Remote, r.Packets, r.Lost, r.LossPercent, r.JitterMs)
		if c.State != StateTerminated && (!m.Sending || !m.Receiving) {
			var off []string
			if !m.Sending {
				off = append(off, "sending")
			}
			if !m.Receiving {
				off = append(off, "receiving")
			}
			fmt.Fprintf(w, " [%s off]", strings.Join(off, ", "))
		}
		fmt.Fprintln(w)
		if r.Packets > 0 {
			fmt.Fprintf(w, "  heard: tone %.0f Hz from %s", r.ToneHz, r.LastSource)
			if r.FirstSource != r.LastSource {
				fmt.Fprintf(w, " (first from %s)", r.FirstSource)
			}
			fmt.Fprintln(w)
		} else {
			fmt.Fprintln(w, "  heard: nothing (no RTP arrived)")
		}
		if r.StrayPackets > 0 {
			fmt.Fprintf(w, "  stray: %d pkts reached our send-only socket from %s (peer latched onto our source port)\n", r.StrayPackets, r.StraySource)
		}
	}
	if c.LocalDirection != "" && c.RemoteDirection != "" {
		fmt.Fprintf(w, "  direction: local %s, remote %s", orDash(c.LocalDirection), orDash(c.RemoteDirection))
		switch c.Hold {
		case "local":
			fmt.Fprint(w, "; on hold (we hold the peer)")
		case "remote":
			fmt.Fprint(w, "; held by remote")
		case "both":
			fmt.Fprint(w, "; on hold both ways (we hold, and held by remote)")
		}
		fmt.Fprintln(w)
	}
	if c.DTMFReceived != "" || c.DTMFSent != "" || c.DTMFInfoReceived != "" {
		fmt.Fprintf(w, "  dtmf: received %q", c.DTMFReceived)
		if c.DTMFInfoReceived != "" {
			fmt.Fprintf(w, " (rtp), %q (SIP INFO)", c.DTMFInfoReceived)
		}
		fmt.Fprintf(w, ", sent %q\n", c.DTMFSent)
	}
	if len(c.Prack) > 0 {
		fmt.Fprintf(w, "  100rel: %s\n", strings.Join(c.Prack, "; "))
	}
	if t := c.Transfer; t != nil {
		fmt.Fprintf(w, "  transfer (%s) to %s: %s", t.Role, t.Target, t.State)
		if t.Replaces != "" {
			fmt.Fprintf(w, ", replaces %s", t.Replaces)
		}
		if t.ReferCode != 0 {
			fmt.Fprintf(w, ", REFER %d %s", t.ReferCode, t.ReferReason)
		}
		if t.NewCall != "" {
			fmt.Fprintf(w, ", new call %s", t.NewCall)
		}
		fmt.Fprintln(w)
		if len(t.Progress) > 0 {
			fmt.Fprintf(w, "    notify: %s\n", strings.Join(t.Progress, " -> "))
		}
		if t.Error != "" {
			fmt.Fprintf(w, "    error: %s\n", t.Error)
		}
	}
	if c.MediaError != "" {
		fmt.Fprintf(w, "  media error: %s\n", c.MediaError)
	}
}

func printOptions(w io.Writer, o OptionsResult) {
	fmt.Fprintf(w, "OPTIONS %s: %d %s (%d ms)\n", o.Target, o.Code, o.Reason, o.RTTMs)
	if o.Received != "" {
		fmt.Fprintf(w, "  seen from: %s (Via received/rport)\n", o.Received)
	}
	for _, name := range []string{"Allow", "Accept", "Supported", "Server", "User-Agent", "Contact", "Via"} {
		if v, ok := o.Headers[name]; ok {
			fmt.Fprintf(w, "  %s: %s\n", name, v)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
