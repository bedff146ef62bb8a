package webrtcgw

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/siplab/siplab/media"
	"github.com/siplab/siplab/sip/sdpneg"
)

// Flow counts one direction through the gateway. ToneHz is the test tone
// this direction carries, i.e. what the receiving side hears: with each
// lab phone sending its own frequency it says who hears whom.
type Flow struct {
	Packets      uint64 `json:"packets"`
	Bytes        uint64 `json:"bytes"`
	AudioPackets uint64 `json:"audio_packets"`
	DTMFPackets  uint64 `json:"dtmf_packets"`
	// Dropped were not relayed: another payload type, telephone-event
	// the far side did not negotiate, or no destination yet.
	Dropped uint64 `json:"dropped"`
	// Invalid datagrams on the core socket were not RTP.
	Invalid     uint64    `json:"invalid,omitempty"`
	ToneHz      float64   `json:"tone_hz"`
	LevelDBFS   float64   `json:"level_dbfs"`
	FirstPacket time.Time `json:"first_packet,omitzero"`
	LastPacket  time.Time `json:"last_packet,omitzero"`
	Errors      uint64    `json:"errors,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
}

type flow struct {
	Flow
	meter *media.ToneMeter
}

func (f *flow) count(p *rtp.Packet, audio, dtmf bool, now time.Time) {
	f.Packets++
	f.Bytes += uint64(len(p.Payload))
	if f.FirstPacket.IsZero() {
		f.FirstPacket = now
	}
	f.LastPacket = now
	switch {
	case audio:
		f.AudioPackets++
		if f.meter != nil {
			f.meter.AddPayload(p.Payload)
		}
	case dtmf:
		f.DTMFPackets++
	}
}

func (f *flow) fail(err error) {
	f.Errors++
	f.LastError = err.Error()
}

func (f *flow) snapshot() Flow {
	out := f.Flow
	if f.meter != nil {
		out.ToneHz = f.meter.Hz()
		out.LevelDBFS = f.meter.LevelDBFS()
	}
	return out
}

// Stats is one call's state for status output.
type Stats struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// ICE is the ICE connection state (new, checking, connected, ...),
	// Peer the PeerConnection's (which includes DTLS), DTLS the DTLS
	// transport's alone (new, connecting, connected, failed, closed).
	ICE  string `json:"ice"`
	Peer string `json:"peer"`
	DTLS string `json:"dtls,omitempty"`
	Lite bool   `json:"ice_lite,omitempty"`
	// LocalCandidates and RemoteCandidates are the a=candidate values of
	// the two descriptions; SelectedPair the pair ICE settled on.
	LocalCandidates  []string `json:"local_candidates"`
	RemoteCandidates []string `json:"remote_candidates"`
	SelectedPair     string   `json:"selected_pair,omitempty"`
	Codec            string   `json:"codec,omitempty"`
	BrowserDTMFPT    uint8    `json:"browser_dtmf_pt,omitempty"`
	CoreDTMFPT       uint8    `json:"core_dtmf_pt,omitempty"`
	// CoreLocal is the gateway's plain RTP socket, CoreRemote where it
	// sends (the core's SDP), CoreSources where core RTP came from.
	CoreLocal   netip.AddrPort      `json:"core_local"`
	CoreRemote  netip.AddrPort      `json:"core_remote,omitzero"`
	CoreSources []media.SourceCount `json:"core_sources,omitempty"`
	// CoreDirection and BrowserDirection are what each side last said
	// of its stream: sendonly or inactive is that side holding the call.
	CoreDirection    sdpneg.Direction `json:"core_direction"`
	BrowserDirection sdpneg.Direction `json:"browser_direction"`
	// Renegotiations counts re-offers answered, from either side.
	Renegotiations int `json:"renegotiations,omitempty"`
	// ToCore is the browser's audio relayed to the core (what the desk
	// phone hears); ToBrowser the core's audio relayed to the browser.
	ToCore    Flow `json:"to_core"`
	ToBrowser Flow `json:"to_browser"`
}

// Stats is a snapshot of the call.
func (c *Call) Stats() Stats {
	c.mu.Lock()
	st := Stats{
		Name: c.name, Created: c.created, ICE: c.iceState, Peer: c.pcState, Lite: c.g.cfg.Lite,
		BrowserDTMFPT: c.browserTE, CoreDTMFPT: c.coreTE,
		CoreLocal: c.coreLocal, CoreRemote: c.coreRemote,
		CoreDirection: c.coreDir, BrowserDirection: c.browserDir, Renegotiations: c.renegotiations,
		CoreSources: append([]media.SourceCount(nil), c.sources...),
		ToCore:      c.toCore.snapshot(), ToBrowser: c.toBrowser.snapshot(),
	}
	if c.codec.Name != "" {
		st.Codec = c.codec.String()
	}
	pc := c.pc
	started := c.iceState != "new"
	c.mu.Unlock()
	if pc == nil {
		return st
	}
	if d := pc.LocalDescription(); d != nil {
		st.LocalCandidates = candidates(d.SDP)
	}
	if d := pc.RemoteDescription(); d != nil {
		st.RemoteCandidates = candidates(d.SDP)
	}
	if started {
		// pion sets up the ICE transport unlocked until its agent runs
		// (GetSelectedCandidatePair races with ICETransport.Start):
		// there is no pair to show before then anyway.
		st.SelectedPair = selectedPair(pc)
		st.DTLS = dtlsState(pc)
	}
	return st
}

// CoreLocal is the gateway's plain RTP socket (Stats without asking pion).
func (c *Call) CoreLocal() netip.AddrPort { return c.coreLocal }

// dtlsState is the DTLS transport's state ("" before there is one).
func dtlsState(pc *webrtc.PeerConnection) string {
	for _, s := range pc.GetSenders() {
		if t := s.Transport(); t != nil {
			return t.State().String()
		}
	}
	return ""
}

// candidates are the a=candidate values of an SDP body.
func candidates(sdp string) []string {
	var out []string
	for line := range strings.Lines(sdp) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=candidate:"); ok {
			out = append(out, v)
		}
	}
	return out
}

func selectedPair(pc *webrtc.PeerConnection) string {
	for _, s := range pc.GetSenders() {
		t := s.Transport()
		if t == nil {
			continue
		}
		p, err := t.ICETransport().GetSelectedCandidatePair()
		if err != nil || p == nil {
			continue
		}
		return candidateString(p.Local) + " <-> " + candidateString(p.Remote)
	}
	return ""
}

func candidateString(c *webrtc.ICECandidate) string {
	if c == nil {
		return "?"
	}
	return c.Typ.String() + " " + net.JoinHostPort(c.Address, strconv.Itoa(int(c.Port)))
}
