package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/siplab/siplab/lab/demolab"
	"github.com/siplab/siplab/sbc"
	"github.com/siplab/siplab/webphone"
)

// phonePage is the browser phone (package webphone, the SBC's own page) on
// the console's port: the intern opens it next to the ladder. Its SIP
// WebSocket crosses origins to the SBC's WSS listener, and its STUN/TURN
// servers are the SBC's live setting webrtc_ice_servers and its ICE
// transport policy the SBC's -webrtc-ice-policy, all read from the
// SBC's status document of the poller's last round at every page load.
func (s *Server) phonePage() (http.Handler, error) {
	return webphone.Handler(webphone.Config{Domain: demolab.Domain, Live: s.poller.sbcPhone})
}

// sbcPhone is what the page needs from the SBC, or why it cannot have it.
func (p *poller) sbcPhone() (webphone.Live, error) {
	p.mu.Lock()
	nodes, err := p.nodes, p.nodesErr
	p.mu.Unlock()
	if err != nil {
		return webphone.Live{}, fmt.Errorf("the lab: %w", err)
	}
	if nodes == nil {
		return webphone.Live{}, errors.New("the console has not read the lab yet (is it up? siplab up)")
	}
	for _, n := range nodes {
		if n.Role != "sbc" {
			continue
		}
		if len(n.Daemon) == 0 {
			return webphone.Live{}, fmt.Errorf("the SBC (%s) does not answer: %s", n.Name, n.Error)
		}
		return sbcLive(n.Daemon)
	}
	return webphone.Live{}, errors.New("the lab has no SBC")
}

// sbcLive reads the SBC's status document (sbc.Status).
func sbcLive(doc json.RawMessage) (webphone.Live, error) {
	var st sbc.Status
	if err := json.Unmarshal(doc, &st); err != nil {
		return webphone.Live{}, fmt.Errorf("the SBC's status: %w", err)
	}
	if st.AccessWSS == "" {
		return webphone.Live{}, errors.New("the SBC has no SIP WebSocket listener (sbc -wss)")
	}
	ice, err := sbc.ParseICEServers(st.Settings[sbc.SettingWebRTCICEServers])
	if err != nil {
		return webphone.Live{}, fmt.Errorf("the SBC's %s: %w", sbc.SettingWebRTCICEServers, err)
	}
	// An older SBC does not report its policy: the page's default (all).
	return webphone.Live{WSURL: "wss://" + st.AccessWSS + "/", ICEServers: ice, ICETransportPolicy: st.WebRTCICEPolicy}, nil
}
