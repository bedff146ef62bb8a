package b2bua

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/uaclient"
)

// Reset hangs up a call up through the PBX (both phones see the BYE),
// deletes voicemail files and puts a changed setting back.
func TestResetEndsCallsVoicemailAndSettings(t *testing.T) {
	l := newLab(t, labOpts{}, "alice", "bob")
	alice, bob := l.phone("alice"), l.phone("bob")
	if err := bob.Set("auto_answer", "200ms"); err != nil {
		t.Fatal(err)
	}
	initial := l.pbx.Settings()
	if err := l.pbx.Set(SettingMOH, "off"); err != nil {
		t.Fatal(err)
	}
	call := dialUp(t, alice, l.dial("101"))
	// A leftover recording (a message cut short) in a mailbox folder.
	stray := filepath.Join(l.vmDir, "bob", "old.wav")
	if l.vmDir != "" {
		if err := os.MkdirAll(filepath.Dir(stray), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(stray, []byte("RIFF"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	res := l.pbx.Reset(siptest.Ctx(t, 10*time.Second))
	if res.CallsEnded != 1 || len(res.Restored) != 1 || res.Restored[0] != SettingMOH {
		t.Errorf("reset %+v, want 1 call and moh restored", res)
	}
	if got := l.pbx.Settings(); got != initial {
		t.Errorf("settings after reset %+v, want %+v", got, initial)
	}
	if st := l.pbx.Status(); len(st.Calls) != 0 || len(st.Mailbox) != 0 {
		t.Errorf("status after reset: %d calls, %d mailboxes", len(st.Calls), len(st.Mailbox))
	}
	if _, err := call.Wait(siptest.Ctx(t, 5*time.Second), uaclient.StateTerminated); err != nil {
		t.Errorf("alice's call did not end: %v", err)
	}
	bc, err := bob.FindCall("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bc.Wait(siptest.Ctx(t, 5*time.Second), uaclient.StateTerminated); err != nil {
		t.Errorf("bob's call did not end: %v", err)
	}
	if l.vmDir != "" {
		if _, err := os.Stat(stray); !os.IsNotExist(err) {
			t.Errorf("voicemail file left: %v", err)
		}
	}
}
