package proxy

import (
	"fmt"
	"strings"

	"github.com/siplab/siplab/internal/live"
)

// rport modes. The lab's lost-responses exercise is "ignore".
const (
	// RPortHonour follows RFC 3261 §18.2.2 and RFC 3581: answer to the
	// packet's source IP, and to its source port when the Via carries rport.
	RPortHonour = "honour"
	// RPortIgnore answers to the Via sent-by host:port as written, ignoring
	// where the packet came from (no received= IP either): behind a NAT the
	// responses are lost. A Via with ;rport still gets its answer at the
	// source (RFC 3581 asked for), so `set alice rport on` is the phone's
	// fix, as the training page says.
	RPortIgnore = "ignore"
	// RPortForce answers to the packet's source IP:port even without rport
	// in the Via (Kamailio's force_rport), for phones that never ask.
	RPortForce = "force"
)

// contact_fixup modes. The lab's lost-calls exercise is "off".
const (
	// FixupAuto routes to the address a REGISTER came from only when NAT
	// was detected for the binding (see NATTests); otherwise to the
	// Contact as written, which RFC 3261 §10.2 lets a UA register from
	// another socket. The default.
	FixupAuto = "auto"
	// FixupOn always routes to the address the REGISTER came from.
	FixupOn = "on"
	// FixupOff always routes to the Contact as written: behind NAT, calls
	// never ring.
	FixupOff = "off"
)

// Setting names, as used by Set, the control API and the host CLI.
const (
	SettingRPort        = "rport"
	SettingReceived     = "received"
	SettingContactFixup = "contact_fixup"
	SettingRecordRoute  = "record_route"
)

// SettingNames lists the live toggles in a stable order.
func SettingNames() []string {
	return []string{SettingRPort, SettingReceived, SettingContactFixup, SettingRecordRoute}
}

// Settings are the NAT toggles. They can change while calls are up: each
// request and each response reads the settings current at that moment.
type Settings struct {
	// RPort is where responses go: honour, ignore or force.
	RPort string `json:"rport"`
	// Received writes received=/rport= into the top Via of every request on
	// the way in, so the phone sees its public address in responses.
	Received bool `json:"received"`
	// ContactFixup decides whether requests to a registered user go to
	// the address its REGISTER was seen coming from (the binding's Source)
	// instead of the Contact it wrote: auto (when NAT was detected), on
	// (always) or off (never: calls to a phone behind NAT never ring).
	ContactFixup string `json:"contact_fixup"`
	// RecordRoute keeps the proxy in the path of in-dialog requests. Off, a
	// BYE goes straight to the Contact the peer wrote: the ghost-call bug
	// when that Contact is a private address.
	RecordRoute bool `json:"record_route"`
}

// DefaultSettings are the fixed (working) behaviours; the lab breaks them
// on purpose.
func DefaultSettings() Settings {
	return Settings{RPort: RPortHonour, Received: true, ContactFixup: FixupAuto, RecordRoute: true}
}

func (s Settings) validate() error {
	switch s.RPort {
	case RPortHonour, RPortIgnore, RPortForce:
	default:
		return fmt.Errorf("%w: rport %q (want %s, %s or %s)", ErrBadSettingValue, s.RPort, RPortHonour, RPortIgnore, RPortForce)
	}
	switch s.ContactFixup {
	case FixupAuto, FixupOn, FixupOff:
		return nil
	}
	return fmt.Errorf("%w: contact_fixup %q (want %s, %s or %s)", ErrBadSettingValue, s.ContactFixup, FixupAuto, FixupOn, FixupOff)
}

// Set changes one toggle by name from its text form: rport takes
// honour|ignore|force, contact_fixup auto|on|off, the others on|off (also true/false, 1/0, yes/no).
func (s *Settings) Set(name, value string) error {
	value = strings.ToLower(strings.TrimSpace(value))
	switch strings.ToLower(strings.TrimSpace(name)) {
	case SettingRPort:
		if value == "honor" { // accept the US spelling people type
			value = RPortHonour
		}
		next := *s
		next.RPort = value
		if err := next.validate(); err != nil {
			return err
		}
		*s = next
		return nil
	case SettingReceived:
		return setBool(&s.Received, name, value)
	case SettingContactFixup, "contact-fixup":
		if value != FixupAuto {
			var on bool
			if err := setBool(&on, name, value); err != nil {
				return fmt.Errorf("%w: %s %q (want auto, on or off)", ErrBadSettingValue, name, value)
			}
			value = live.OnOffWord(on)
		}
		s.ContactFixup = value
		return nil
	case SettingRecordRoute, "record-route":
		return setBool(&s.RecordRoute, name, value)
	}
	return fmt.Errorf("%w: %q (have %s)", ErrUnknownSetting, name, strings.Join(SettingNames(), ", "))
}

// Get returns one toggle in the text form Set accepts.
func (s Settings) Get(name string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case SettingRPort:
		return s.RPort, nil
	case SettingReceived:
		return live.OnOffWord(s.Received), nil
	case SettingContactFixup, "contact-fixup":
		return s.ContactFixup, nil
	case SettingRecordRoute, "record-route":
		return live.OnOffWord(s.RecordRoute), nil
	}
	return "", fmt.Errorf("%w: %q (have %s)", ErrUnknownSetting, name, strings.Join(SettingNames(), ", "))
}

func setBool(dst *bool, name, value string) error {
	on, err := live.OnOff(value)
	if err != nil {
		return fmt.Errorf("%w: %s %w", ErrBadSettingValue, name, err)
	}
	*dst = on
	return nil
}
