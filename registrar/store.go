package registrar

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/siplab/siplab/sip/location"
)

// store is the in-memory binding table: AOR → bindings, sharded so that
// REGISTERs for different users never wait on each other.
const storeShards = 64

type entry struct {
	b   location.Binding
	key string // contactKey(b.ContactURI)
}

type shard struct {
	mu   sync.RWMutex
	aors map[string][]entry // slices are never modified in place: readers may hold them
	_    [40]byte
}

type store struct {
	shards [storeShards]shard
	// journal, when bindings persist, takes every change register applies
	// (set once, before requests are served).
	journal *journal
	// watch numbers every change and streams it to watchers (GET
	// /v1/watch: the proxy's location cache).
	watch *hub
}

func newStore() *store {
	s := &store{watch: newHub()}
	for i := range s.shards {
		s.shards[i].aors = map[string][]entry{}
	}
	return s
}

// shardOf hashes the AOR (FNV-1a). The journal stripe is derived from it, so
// it must not change between runs only within a generation, which holds.
func shardOf(aor string) int {
	h := uint32(2166136261)
	for i := 0; i < len(aor); i++ {
		h ^= uint32(aor[i])
		h *= 16777619
	}
	return int(h % storeShards)
}

// contactKey is what makes two Contact URIs "the same binding" (RFC 3261
// §19.1.4, simplified): scheme, user, host (case-insensitive), port, and the
// transport/maddr parameters; other parameters do not tell bindings apart.
func contactKey(uri string) string {
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil {
		return uri
	}
	return uriKey(&u)
}

func uriKey(u *sip.Uri) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(u.Scheme))
	b.WriteByte(':')
	if u.Raw() != "" {
		b.WriteString(u.Raw())
		return b.String()
	}
	if u.User != "" {
		b.WriteString(u.User)
		b.WriteByte('@')
	}
	b.WriteString(strings.ToLower(u.Host))
	if u.Port > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(u.Port))
	}
	for _, p := range []string{"transport", "maddr"} {
		if v, ok := u.UriParams.Get(p); ok {
			b.WriteByte(';')
			b.WriteString(p)
			b.WriteByte('=')
			b.WriteString(strings.ToLower(v))
		}
	}
	return b.String()
}

// applyRecord returns list with rec applied; list itself is not modified.
func applyRecord(list []entry, rec *record) []entry {
	return applyKeyed(list, rec, nil, nil)
}

// applyKeyed is applyRecord with the contact keys of rec.Del and rec.Set
// already known (nil: computed here).
func applyKeyed(list []entry, rec *record, delKeys, setKeys []string) []entry {
	var out []entry
	if !rec.Clear {
		out = make([]entry, 0, len(list)+len(rec.Set))
		out = append(out, list...)
	}
	for i, d := range rec.Del {
		k := keyAt(delKeys, i, d)
		out = slices.DeleteFunc(out, func(e entry) bool { return e.key == k })
	}
	for i, b := range rec.Set {
		k := keyAt(setKeys, i, b.ContactURI)
		if i := slices.IndexFunc(out, func(e entry) bool { return e.key == k }); i >= 0 {
			out[i] = entry{b: b, key: k}
		} else {
			out = append(out, entry{b: b, key: k})
		}
	}
	return out
}

func keyAt(keys []string, i int, uri string) string {
	if i < len(keys) {
		return keys[i]
	}
	return contactKey(uri)
}

// apply is used while loading, before any request is served.
func (s *store) apply(rec *record) {
	sh := &s.shards[shardOf(rec.AOR)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.set(rec.AOR, applyRecord(sh.aors[rec.AOR], rec))
}

func (sh *shard) set(aor string, list []entry) {
	if len(list) == 0 {
		delete(sh.aors, aor)
		return
	}
	sh.aors[aor] = list
}

func live(list []entry, now time.Time) []location.Binding {
	out := make([]location.Binding, 0, len(list))
	for _, e := range list {
		if now.IsZero() || e.b.Expires.After(now) {
			b := e.b
			b.Path = slices.Clone(b.Path)
			out = append(out, b)
		}
	}
	return out
}

// sortBindings puts the preferred contact first: highest q, then most
// recently refreshed.
func sortBindings(bs []location.Binding) {
	slices.SortStableFunc(bs, func(a, b location.Binding) int {
		if c := cmp.Compare(b.Q, a.Q); c != 0 {
			return c
		}
		return b.Updated.Compare(a.Updated)
	})
}

func (s *store) lookup(aor string, now time.Time) []location.Binding {
	sh := &s.shards[shardOf(aor)]
	sh.mu.RLock()
	bs := live(sh.aors[aor], now)
	sh.mu.RUnlock()
	sortBindings(bs)
	return bs
}

func (s *store) all(now time.Time) []location.Binding {
	var out []location.Binding
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for _, list := range sh.aors {
			out = append(out, live(list, now)...)
		}
		sh.mu.RUnlock()
	}
	slices.SortFunc(out, func(a, b location.Binding) int {
		if c := strings.Compare(a.AOR, b.AOR); c != 0 {
			return c
		}
		return strings.Compare(a.ContactURI, b.ContactURI)
	})
	return out
}

// gc drops expired bindings and returns how many. It writes no journal
// record: replay skips expired bindings anyway.
func (s *store) gc(now time.Time) int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for aor, list := range sh.aors {
			keep := slices.IndexFunc(list, func(e entry) bool { return !e.b.Expires.After(now) })
			if keep < 0 {
				continue
			}
			out := make([]entry, 0, len(list))
			for _, e := range list {
				if e.b.Expires.After(now) {
					out = append(out, e)
				} else {
					n++
				}
			}
			sh.set(aor, out)
			s.watch.publish(aor, out)
		}
		sh.mu.Unlock()
	}
	return n
}

func (s *store) count() (aors, bindings int) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		aors += len(sh.aors)
		for _, l := range sh.aors {
			bindings += len(l)
		}
		sh.mu.RUnlock()
	}
	return aors, bindings
}
