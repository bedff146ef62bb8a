package proxy

import (
	"fmt"
	"strings"
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
	// ContactFixup routes requests to a registered user to the address its
	// REGISTER was seen coming from (the binding's Source) instead of the
	// Contact it wrote. Off reproduces calls that never ring behind NAT.
	ContactFixup bool `json:"contact_fixup"`
	// RecordRoute keeps the proxy in the path of in-dialog requests. Off, a
	// BYE goes straight to the Contact the peer wrote: the ghost-call bug
	// when that Contact is a private address.
	RecordRoute bool `json:"record_route"`
}

// DefaultSettings are the fixed (working) behaviours; the lab breaks them
// on purpose.
func DefaultSettings() Settings {
	return Settings{RPort: RPortHonour, Received: true, ContactFixup: true, RecordRoute: true}
}

func (s Settings) validate() error {
	switch s.RPort {
	case RPortHonour, RPortIgnore, RPortForce:
		return nil
	}
	return fmt.Errorf("%w: rport %q (want %s, %s or %s)", ErrBadSettingValue, s.RPort, RPortHonour, RPortIgnore, RPortForce)
}

// Set changes one toggle by name from its text form: rport takes
// honour|ignore|force, the others on|off (also true/false, 1/0, yes/no).
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
		return setBool(&s.ContactFixup, name, value)
	case SettingRecordRoute, "record-route":
		return setBool(&s.RecordRoute, name, value)
	}
	return fmt.Errorf("%w: %q (have %s)", ErrUnknownSetting, name, strings.Join(SettingNames(), ", "))
}

// Get returns one toggle in the text form Set accepts.
func (s Settings) Get(name string) (string, error) {
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	switch strings.ToLower(strings.TrimSpace(name)) {
	case SettingRPort:
		return s.RPort, nil
	case SettingReceived:
		return onOff(s.Received), nil
	case SettingContactFixup, "contact-fixup":
		return onOff(s.ContactFixup), nil
	case SettingRecordRoute, "record-route":
		return onOff(s.RecordRoute), nil
	}
	return "", fmt.Errorf("%w: %q (have %s)", ErrUnknownSetting, name, strings.Join(SettingNames(), ", "))
}

func setBool(dst *bool, name, value string) error {
	switch value {
	case "on", "true", "1", "yes":
		*dst = true
	case "off", "false", "0", "no":
		*dst = false
	default:
		return fmt.Errorf("%w: %s %q (want on or off)", ErrBadSettingValue, name, value)
	}
	return nil
}
