package b2buacli

import (
	"path/filepath"
	"testing"

	"github.com/siplab/siplab/b2bua"
)

// The Docker lab's PBX starts with lab-nets/dialplan.conf; a typo there
// would only show as a PBX container that exits at `siplab up`.
func TestLabDialPlanLoads(t *testing.T) {
	dp, err := b2bua.LoadDialPlan(filepath.Join("..", "..", "..", "lab-nets", "dialplan.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for ext, user := range map[string]string{"100": "alice", "101": "bob", "102": "carol"} {
		e, ok := dp.Lookup(ext)
		if !ok || e.Target.User != user {
			t.Errorf("extension %s: %+v (found %v), want user %s", ext, e, ok, user)
		}
	}
	if _, ok := dp.Lookup("*97"); !ok {
		t.Error("no voicemail extension *97")
	}
}
