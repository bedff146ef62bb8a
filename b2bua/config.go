package b2bua

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/siplab/siplab/internal/live"
	"github.com/siplab/siplab/sip/location"
)

// CorrelationHeader is written on both legs of every call: the same value on
// the caller's dialog (in our responses and requests) and on the callee's
// (in our INVITE and every request after it). A capture or a ladder groups
// the two Call-IDs by it, as sngrep groups B2BUA legs. The value is the call
// id status shows, e.g. "X-Siplab-Call: c7-4f1a9b".
const CorrelationHeader = "X-Siplab-Call"

// Default timings.
const (
	// DefaultNoAnswer is how long a callee rings before the no-answer
	// forward (or 480) when the extension names no timeout.
	DefaultNoAnswer = 20 * time.Second
	// DefaultMaxMessage bounds a voicemail recording.
	DefaultMaxMessage = 60 * time.Second
	// DefaultMOHHz is the music-on-hold tone: not a multiple of 50 Hz, so it
	// can never be mistaken for a lab phone's test tone.
	DefaultMOHHz = 1333
	// DefaultMaxCalls is the PBX's channel limit.
	DefaultMaxCalls = 100
)

// Config configures a B2BUA. Zero values of optional fields are defaults.
type Config struct {
	// Domain is the SIP domain of the users ("siplab.test"): callee legs
	// go to sip:<user>@<Domain>.
	Domain string
	// Location finds registered users (the registrar in-process or
	// location.HTTPClient on the registrar's location API). Required.
	Location location.Service
	// Proxy is the outbound proxy "ip:port" callee legs are sent through
	// (the platform proxy's core address): it knows the NAT way to each
	// phone and stays in the dialog with Record-Route. Empty: the PBX sends
	// to the address each binding's REGISTER came from.
	Proxy string
	// DialPlan maps numbers to users and voicemail. Required.
	DialPlan *DialPlan
	// MediaIP is the address the RTP relay binds and writes into SDP; the
	// zero value is the SIP endpoint's address.
	MediaIP netip.Addr
	// VoicemailDir is where recordings go (<mailbox>/<time>-<call>.wav);
	// empty disables voicemail (480 instead).
	VoicemailDir string
	// MaxMessage bounds one recording; 0 = DefaultMaxMessage.
	MaxMessage time.Duration
	// MaxCalls bounds calls in progress (each holds sockets and
	// goroutines); more get 503. 0 = DefaultMaxCalls.
	MaxCalls int
	// MOHHz is the music-on-hold tone; 0 = DefaultMOHHz.
	MOHHz float64
	// Settings are the initial live settings; nil = DefaultSettings().
	Settings *Settings
	// UserAgent is the Server/User-Agent value; empty = "siplab-b2bua".
	UserAgent string
	Logger    *slog.Logger
}

func (c *Config) validate() error {
	if c.Location == nil {
		return ErrNoLocation
	}
	if c.DialPlan == nil {
		return ErrNoDialPlan
	}
	c.Domain = strings.ToLower(strings.TrimSpace(c.Domain))
	if c.Domain == "" {
		return fmt.Errorf("%w: domain is required", ErrConfig)
	}
	if c.Proxy != "" {
		ap, err := netip.ParseAddrPort(c.Proxy)
		if err != nil {
			return fmt.Errorf("%w: proxy %q: want ip:port: %w", ErrConfig, c.Proxy, err)
		}
		c.Proxy = ap.String()
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.MaxMessage < 0 {
		return fmt.Errorf("%w: max message %v", ErrConfig, c.MaxMessage)
	}
	if c.MaxCalls == 0 {
		c.MaxCalls = DefaultMaxCalls
	}
	if c.MaxCalls < 0 {
		return fmt.Errorf("%w: max calls %d", ErrConfig, c.MaxCalls)
	}
	if c.MOHHz == 0 {
		c.MOHHz = DefaultMOHHz
	}
	if c.MOHHz < 100 || c.MOHHz > 3500 {
		return fmt.Errorf("%w: music-on-hold tone %v Hz outside 100-3500", ErrConfig, c.MOHHz)
	}
	if c.Settings == nil {
		s := DefaultSettings()
		c.Settings = &s
	}
	if c.UserAgent == "" {
		c.UserAgent = "siplab-b2bua"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Setting names for Set and `b2bua set`.
const (
	SettingMediaAnchor = "media_anchor"
	SettingLatch       = "latch"
	SettingMOH         = "moh"
	SettingNoAnswer    = "no_answer"
)

// SettingNames lists the live toggles in a stable order.
func SettingNames() []string {
	return []string{SettingMediaAnchor, SettingLatch, SettingMOH, SettingNoAnswer}
}

// Settings are the live toggles. A change applies to the next packet
// (latch, moh), the next call (no_answer), or to new calls and, by
// re-INVITE, to answered ones (media_anchor).
type Settings struct {
	// MediaAnchor relays RTP through the PBX (SDP rewritten to the PBX's
	// media address). Off, SDP passes through and phones send to each
	// other: the classic no-audio bug when both are behind NAT. B2BUA.Set
	// also moves calls already answered.
	MediaAnchor bool `json:"media_anchor"`
	// Latch sends each leg's RTP to where that phone's RTP really comes
	// from (comedia), not to the address its SDP wrote.
	Latch bool `json:"latch"`
	// MOH plays music on hold to a held party; off, the held party hears silence.
	MOH bool `json:"moh"`
	// NoAnswer is the ring time before no-answer handling when an
	// extension names none.
	NoAnswer time.Duration `json:"no_answer"`
}

// DefaultSettings are the working behaviours.
func DefaultSettings() Settings {
	return Settings{MediaAnchor: true, Latch: true, MOH: true, NoAnswer: DefaultNoAnswer}
}

// Get returns one setting as text.
func (s Settings) Get(name string) (string, error) {
	switch normName(name) {
	case SettingMediaAnchor:
		return live.OnOffWord(s.MediaAnchor), nil
	case SettingLatch:
		return live.OnOffWord(s.Latch), nil
	case SettingMOH:
		return live.OnOffWord(s.MOH), nil
	case SettingNoAnswer:
		return s.NoAnswer.String(), nil
	}
	return "", fmt.Errorf("%w %q (known: %s)", ErrUnknownSetting, name, strings.Join(SettingNames(), ", "))
}

// Set changes one setting from text.
func (s *Settings) Set(name, value string) error {
	v := strings.ToLower(strings.TrimSpace(value))
	var err error
	switch normName(name) {
	case SettingMediaAnchor:
		s.MediaAnchor, err = live.OnOff(value)
	case SettingLatch:
		s.Latch, err = live.OnOff(value)
	case SettingMOH:
		s.MOH, err = live.OnOff(value)
	case SettingNoAnswer:
		d, perr := time.ParseDuration(v)
		if perr != nil || d < time.Second || d > 10*time.Minute {
			return fmt.Errorf("%w: no_answer %q (a duration between 1s and 10m)", ErrBadValue, value)
		}
		s.NoAnswer = d
	default:
		return fmt.Errorf("%w %q (known: %s)", ErrUnknownSetting, name, strings.Join(SettingNames(), ", "))
	}
	if err != nil {
		return fmt.Errorf("%w: %s %w", ErrBadValue, name, err)
	}
	return nil
}

func normName(n string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(n)), "-", "_")
}

// settingsBox holds the live settings, read lock-free: the media relay
// reads the latching mode for every RTP packet.
type settingsBox struct{ live.Value[Settings] }

func (b *settingsBox) get() Settings { return b.Load() }
