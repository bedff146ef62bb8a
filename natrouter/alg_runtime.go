package natrouter

import (
	"fmt"
	"io"

	"github.com/siplab/siplab/natrouter/sipalg"
)

// switchALG wraps an install with what the ALG mode needs around it: the
// host check before, the NFQUEUE consumer bound before the rules that feed
// it (so no packet waits for a consumer that is not there yet) and
// released after rules that no longer need it are gone. On failure the
// previous state is kept. r.mu must be held.
func (r *Router) switchALG(alg ALGMode, install func() error) error {
	if alg.check != nil {
		if err := alg.check(); err != nil {
			return err
		}
	}
	var started *algQueue
	var prev *mangleConfig
	if alg.queue {
		cfg := r.mangleConfig(alg)
		if r.algq == nil {
			q, err := startALGQueue(r.ns, cfg, r.log.With("component", "sipalg"))
			if err != nil {
				return err
			}
			r.algq, started = q, q
		} else {
			old := r.algq.config()
			prev = &old
			r.algq.setConfig(cfg)
		}
	}
	if err := install(); err != nil {
		if started != nil {
			started.close()
			r.algq = nil
		} else if prev != nil {
			r.algq.setConfig(*prev)
		}
		if alg.Name == "kernel" {
			return explainKernelInstall(err)
		}
		return err
	}
	if !alg.queue && r.algq != nil {
		r.algq.close()
		r.algq = nil
	}
	return nil
}

// mangleConfig is the mangler's view of the router.
func (r *Router) mangleConfig(alg ALGMode) mangleConfig {
	mtu := 1500
	if l, err := r.nl.LinkByIndex(r.lan.Index); err == nil && l.Attrs().MTU > 0 {
		mtu = l.Attrs().MTU
	}
	return mangleConfig{
		params: sipalg.Params{LAN: r.lan.Address.Masked(), WAN: r.wan.Address.Addr()},
		faults: alg.Faults,
		mtu:    mtu,
	}
}

// closeALG releases the queue consumer. r.mu must be held.
func (r *Router) closeALG() {
	if r.algq != nil {
		r.algq.close()
		r.algq = nil
	}
}

// ALGFault documents one fault in force.
type ALGFault struct {
	Name    string `json:"name"`
	Summary string `json:"summary"`
	Symptom string `json:"symptom"`
	Trace   string `json:"trace"`
}

// ALGStatus is the ALG part of the router's status.
type ALGStatus struct {
	Mode    string     `json:"mode"`
	Summary string     `json:"summary"`
	Faults  []ALGFault `json:"faults,omitempty"`
	// Kernel is set in kernel mode: what the host kernel offers.
	Kernel *KernelSIPSupport `json:"kernel,omitempty"`
	// Queue is set in broken mode: what the mangler did so far.
	Queue *ALGQueueStats `json:"queue,omitempty"`
}

// algStatus reports the ALG. r.mu must be held.
func (r *Router) algStatus() *ALGStatus {
	st := &ALGStatus{Mode: r.alg.Name, Summary: r.alg.Summary}
	for _, f := range r.alg.Faults.Faults() {
		st.Faults = append(st.Faults, ALGFault{Name: f.Name, Summary: f.Summary, Symptom: f.Symptom, Trace: f.Trace})
	}
	if r.alg.Name == "kernel" {
		k := DetectKernelSIP()
		st.Kernel = &k
	}
	if r.algq != nil {
		s := r.algq.stats()
		st.Queue = &s
	}
	return st
}

// writeText adds the ALG's details under the status's "alg" line.
func (a *ALGStatus) writeText(w io.Writer) {
	if a == nil {
		return
	}
	for _, f := range a.Faults {
		fmt.Fprintf(w, "         fault %s: %s\n", f.Name, f.Summary)
	}
	if a.Mode == "broken" && len(a.Faults) == 0 {
		fmt.Fprintln(w, "         no faults: rewrites Via, Contact, SDP o=/c= and Content-Length consistently")
	}
	if a.Kernel != nil {
		fmt.Fprintf(w, "         kernel nf_conntrack_sip %s, nf_nat_sip %s (%s)\n", a.Kernel.ConntrackSIP, a.Kernel.NATSIP, a.Kernel.Evidence)
	}
	if q := a.Queue; q != nil {
		fmt.Fprintf(w, "         queue %d: %d SIP packets seen, %d rewritten, %d dropped, %d passed, %d errors\n",
			algQueueNum, q.Seen, q.Modified, q.Dropped, q.Passed, q.Errors)
	}
}
