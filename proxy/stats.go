package proxy

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/siplab/siplab/sip/location"
)

// Stats are the proxy's counters since start.
type Stats struct {
	// Requests counts requests received, per method.
	Requests map[string]uint64 `json:"requests"`
	// Responses counts responses sent or forwarded upstream, per class
	// ("1xx".."6xx").
	Responses map[string]uint64 `json:"responses"`
	// Forwarded counts requests sent downstream (one per branch, plus
	// stateless ACKs).
	Forwarded uint64 `json:"forwarded"`
	// ActiveTransactions is the number of requests being proxied now.
	ActiveTransactions int64 `json:"active_transactions"`
	// Loops counts requests refused with 482.
	Loops uint64 `json:"loops"`
	// RelayDenied counts initial requests refused with 403 because their
	// Route pointed somewhere the proxy does not relay to.
	RelayDenied uint64 `json:"relay_denied"`
	// Challenges counts 407s sent.
	Challenges uint64 `json:"challenges"`
	// TimerC counts INVITE branches given up by Timer C.
	TimerC uint64 `json:"timer_c"`
	// Retransmissions2xx counts 2xx retransmissions forwarded upstream.
	Retransmissions2xx uint64 `json:"retransmissions_2xx"`
	// Absorbed counts retransmitted requests of finished transactions
	// answered from what was kept of them (linger.go): the final response
	// sent again, or a retransmitted INVITE absorbed.
	Absorbed uint64 `json:"absorbed"`
	// StrayResponses counts responses dropped because they matched no
	// transaction (retransmitted finals of finished branches included).
	StrayResponses uint64 `json:"stray_responses"`
	// Lingering is what is kept of finished transactions.
	Lingering LingerStatus `json:"lingering"`
}

// Status is what the control plane shows.
type Status struct {
	Listen    []string `json:"listen"`
	Domain    string   `json:"domain,omitempty"`
	Registrar string   `json:"registrar,omitempty"`
	// Routes are the static routes, "domain=ip:port".
	Routes []string `json:"routes,omitempty"`
	// UserRoutes are the routes by Request-URI user, "REGEX=ip:port".
	UserRoutes []string  `json:"user_routes,omitempty"`
	Auth       bool      `json:"auth"`
	TimerC     string    `json:"timer_c"`
	Started    time.Time `json:"started"`
	Settings   Settings  `json:"settings"`
	Stats      Stats     `json:"stats"`
	// NAT is the latest contact_fixup check per binding (AOR + Contact),
	// newest first: which NAT tests fired and where requests went.
	NAT []NATCheck `json:"nat,omitempty"`
	// Guard is the failed-auth guard and the transaction cap.
	Guard GuardStatus `json:"guard"`
	// Location is the location cache's state when the proxy keeps one
	// (-location-watch on): stream up, version, hits vs direct lookups.
	Location *location.CacheStatus `json:"location,omitempty"`
	// Summary is one line for people (`siplab status`).
	Summary string `json:"summary"`
}

// countedMethods get a counter each; any other method (a scanner can invent
// them without end) is counted as "OTHER" so the map cannot grow per request.
var countedMethods = [...]string{"INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS",
	"SUBSCRIBE", "NOTIFY", "REFER", "INFO", "MESSAGE", "PRACK", "UPDATE", "PUBLISH", "OTHER"}

// counters are atomics: the request path takes no lock to count.
type counters struct {
	requests    [len(countedMethods)]atomic.Uint64
	responses   [7]atomic.Uint64
	forwarded   atomic.Uint64
	active      atomic.Int64
	loops       atomic.Uint64
	relayDenied atomic.Uint64
	challenges  atomic.Uint64
	timerC      atomic.Uint64
	retrans     atomic.Uint64
	absorbed    atomic.Uint64
	strays      atomic.Uint64
}

func (c *counters) request(method string) {
	i := slices.Index(countedMethods[:], method)
	if i < 0 {
		i = len(countedMethods) - 1
	}
	c.requests[i].Add(1)
}

func (c *counters) response(code int) {
	class := code / 100
	if class < 1 || class > 6 {
		return
	}
	c.responses[class].Add(1)
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Requests:           map[string]uint64{},
		Responses:          map[string]uint64{},
		Forwarded:          c.forwarded.Load(),
		ActiveTransactions: c.active.Load(),
		Loops:              c.loops.Load(),
		RelayDenied:        c.relayDenied.Load(),
		Challenges:         c.challenges.Load(),
		TimerC:             c.timerC.Load(),
		Retransmissions2xx: c.retrans.Load(),
		Absorbed:           c.absorbed.Load(),
		StrayResponses:     c.strays.Load(),
	}
	for i, m := range countedMethods {
		if n := c.requests[i].Load(); n > 0 {
			s.Requests[m] = n
		}
	}
	for class := 1; class <= 6; class++ {
		if n := c.responses[class].Load(); n > 0 {
			s.Responses[string(rune('0'+class))+"xx"] = n
		}
	}
	return s
}
