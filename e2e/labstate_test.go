package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/siplab/siplab/lab/exercise"
	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/natrouter"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/uaclient"
)

// labSnapshot is the lab's state as far as a fresh `up` defines it, one
// "node/what" key per fact: every daemon's settings, and the state an
// exercise can leave behind — bindings per phone, calls, subscriptions,
// messages, MWI, voicemail, router preset/pinhole/ALG, blocks, SBC
// registrations and relays, TURN allocations. Counters, ports and times
// are left out: they differ between two fresh labs too.
type labSnapshot map[string]string

// collections are the status lists whose length is state: empty on a fresh
// lab (or fixed by its configuration).
var collections = []string{"blocked", "calls", "subscriptions", "blf", "mwi", "messages", "registrations", "allocations", "nat_sessions", "relays"}

func takeSnapshot(ctx context.Context, r *labctl.Runner, dl exercise.Lab) (labSnapshot, error) {
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	// One docker exec per node, all at once: a snapshot per exercise
	// must not cost the CI a second per node.
	outs := make([][]byte, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		if n.Binary == "" {
			continue
		}
		wg.Go(func() { outs[i], errs[i] = dl.Exec(ctx, n.Name, "status", "-json") })
	}
	wg.Wait()
	snap := labSnapshot{}
	for i, n := range nodes {
		if n.Binary == "" {
			continue
		}
		out, err := outs[i], errs[i]
		if err != nil {
			return nil, fmt.Errorf("%s status: %w", n.Name, err)
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(out, &doc); err != nil {
			return nil, fmt.Errorf("%s status: %w", n.Name, err)
		}
		put := func(k, v string) { snap[n.Name+"/"+k] = v }
		if raw, ok := doc["settings"]; ok {
			var m map[string]any
			if json.Unmarshal(raw, &m) == nil {
				for k, v := range m {
					put("setting/"+k, fmt.Sprint(v))
				}
			} else {
				put("settings", string(raw))
			}
		}
		for _, c := range collections {
			var list []json.RawMessage
			if raw, ok := doc[c]; ok && json.Unmarshal(raw, &list) == nil {
				put(c, fmt.Sprint(len(list)))
			}
		}
		switch n.Role {
		case "phone":
			var st uaclient.Status
			if err := json.Unmarshal(out, &st); err != nil {
				return nil, fmt.Errorf("%s status: %w", n.Name, err)
			}
			put("registration", string(st.Registration.State))
			put("contact", st.Registration.Contact)
			put("proxy", st.Proxy)
			mwi := "none"
			if st.MWI != nil {
				b, _ := json.Marshal(st.MWI)
				mwi = string(b)
			}
			put("mwi", mwi)
		case "router":
			var st natrouter.Status
			if err := json.Unmarshal(out, &st); err != nil {
				return nil, fmt.Errorf("%s status: %w", n.Name, err)
			}
			put("preset", st.Preset.Name)
			put("pinhole", st.Pinhole().String())
			put("alg", st.ALG)
		case "registrar":
			var st struct {
				Registrations []location.Binding `json:"registrations"`
			}
			if err := json.Unmarshal(out, &st); err != nil {
				return nil, fmt.Errorf("%s status: %w", n.Name, err)
			}
			by := map[string][]string{}
			for _, b := range st.Registrations {
				by[b.AOR] = append(by[b.AOR], b.ContactURI)
			}
			for aor, cs := range by {
				sort.Strings(cs)
				put("bindings "+aor, strings.Join(cs, " "))
			}
		case "pbx":
			var st struct {
				Mailboxes []struct {
					User     string            `json:"user"`
					Messages []json.RawMessage `json:"messages"`
				} `json:"mailboxes"`
			}
			if err := json.Unmarshal(out, &st); err != nil {
				return nil, fmt.Errorf("%s status: %w", n.Name, err)
			}
			for _, m := range st.Mailboxes {
				put("voicemail "+m.User, fmt.Sprint(len(m.Messages)))
			}
		}
	}
	return snap, nil
}

// diff lists what differs from want, one readable line per fact.
func (got labSnapshot) diff(want labSnapshot) string {
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []string
	for _, k := range slices.Compact(keys) {
		w, wok := want[k]
		g, gok := got[k]
		switch {
		case !gok:
			out = append(out, fmt.Sprintf("  %s: gone (fresh lab: %q)", k, w))
		case !wok:
			out = append(out, fmt.Sprintf("  %s: %q (a fresh lab has none)", k, g))
		case g != w:
			out = append(out, fmt.Sprintf("  %s: %q (fresh lab: %q)", k, g, w))
		}
	}
	return strings.Join(out, "\n")
}

// freshSnapshot resets the lab (siplab reset) and snapshots it: the
// reference every exercise's reset is compared with.
func freshSnapshot(t *testing.T, ctx context.Context, r *labctl.Runner, dl exercise.Lab) labSnapshot {
	t.Helper()
	if err := exercise.Reset(ctx, dl, nil); err != nil {
		t.Fatalf("siplab reset: %v", err)
	}
	snap, err := takeSnapshot(ctx, r, dl)
	if err != nil {
		t.Fatal(err)
	}
	for _, ph := range exercise.Phones {
		if snap[ph+"/registration"] != string(uaclient.RegRegistered) || len(strings.Fields(snap["registrar/bindings sip:"+ph+"@siplab.test"])) != 1 {
			t.Fatalf("fresh lab: %s registration %q, bindings %q", ph, snap[ph+"/registration"], snap["registrar/bindings sip:"+ph+"@siplab.test"])
		}
	}
	return snap
}
