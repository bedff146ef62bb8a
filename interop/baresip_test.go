package interop

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/sip/location"
	"github.com/siplab/siplab/uaclient"
)

const (
	baresipTestProxy = "127.0.0.116"
	baresipTestReg   = "127.0.0.117"
	baresipTestIP    = "127.0.0.118"
	baresipTestOurs  = "127.0.0.119"
	// baresipToneHz is what baresip plays (aufile): unlike any tone our
	// phones derive from their names (alice's is 750 Hz), so hearing it
	// proves the audio came from baresip.
	baresipToneHz = 1100.0
)

// baresip 1.0.0 (Debian) as a third-party phone: bob registers through the
// proxy with digest auth, calls alice (our uaclient) and is called by her.
// Both directions carry audio: alice hears baresip's 1100 Hz file and
// baresip reports RTP established from alice.
//
// baresip is driven through its ctrl_tcp module (JSON in netstrings on a
// TCP socket of 127.0.0.118): commands "dial", "hangup", "quit"; events
// REGISTER_OK, CALL_ESTABLISHED, CALL_CLOSED... It plays a WAV file (aufile)
// and has no audio player, so no sound device is opened.
func TestBaresip(t *testing.T) {
	needTool(t, "baresip", "baresip")
	t.Parallel()
	ctx := testCtx(t)
	l := startLab(t, baresipTestProxy, baresipTestReg)
	alice := l.startPhone(t, ctx, baresipTestOurs, "alice", 100*time.Millisecond)

	b := startBaresip(t, ctx, baresipTestIP, l.proxySIP.String(), "bob")
	// Registered through the proxy: the registrar stored the proxy's Path
	// with the address baresip sent from, and baresip's User-Agent.
	where := b.sip.String()
	bind := l.waitBinding(t, ctx, "bob", func(x location.Binding) bool { return x.Source.String() == where })
	if !strings.HasPrefix(bind.UserAgent, "baresip") || len(bind.Path) != 1 ||
		!strings.Contains(bind.Path[0], l.proxySIP.String()) || !strings.Contains(bind.Path[0], "received="+where) {
		t.Fatalf("bob's binding %+v: want baresip registered through the proxy %s from %s", bind, l.proxySIP, where)
	}

	t.Run("baresip calls our phone", func(t *testing.T) {
		if err := b.command(ctx, "dial", "sip:alice@"+domain); err != nil {
			t.Fatal(err)
		}
		// alice auto-answers; baresip answered the proxy's 407 on its own.
		st, err := alice.WaitCall(ctx, "", uaclient.StateConfirmed)
		if err != nil {
			t.Fatalf("alice: %v (%+v)", err, st)
		}
		if st.Direction != uaclient.Incoming || !strings.Contains(st.Peer, "bob@") {
			t.Fatalf("alice's call %+v: want incoming from bob", st)
		}
		if _, err := b.waitEvent(ctx, "CALL_ESTABLISHED"); err != nil {
			t.Fatal(err)
		}
		st = hearTone(t, ctx, alice, st.ID, baresipToneHz)
		if err := b.command(ctx, "hangup", ""); err != nil {
			t.Fatal(err)
		}
		st, err = alice.WaitCall(ctx, st.ID, uaclient.StateTerminated)
		if err != nil || st.EndedBy != "remote" || st.Code != 200 {
			t.Fatalf("after baresip's hangup: %v (%+v); want ended by the remote BYE", err, st)
		}
		if _, err := b.waitEvent(ctx, "CALL_CLOSED"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("our phone calls baresip", func(t *testing.T) {
		// ;answermode=auto in baresip's account line answers it.
		c, st := confirmedCall(t, ctx, alice, "bob", "call to baresip")
		if want := "sip:" + l.proxySIP.String() + ";lr"; len(st.RouteSet) != 1 || st.RouteSet[0] != want {
			t.Errorf("route set %q: want baresip to copy the proxy's Record-Route %s", st.RouteSet, want)
		}
		ev, err := b.waitEvent(ctx, "CALL_RTPESTAB")
		if err != nil {
			t.Fatal(err)
		}
		if ev.Direction != "incoming" {
			t.Errorf("baresip reports RTP on a %q call, want incoming", ev.Direction)
		}
		hearTone(t, ctx, alice, c.ID(), baresipToneHz)
		if err := c.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		if st, err := c.Wait(ctx, uaclient.StateTerminated); err != nil || st.EndedBy != "local" {
			t.Fatalf("hangup: %v (%+v)", err, st)
		}
		if _, err := b.waitEvent(ctx, "CALL_CLOSED"); err != nil {
			t.Fatal(err)
		}
	})
}

// hearTone waits until the phone's call has received enough audio to name
// its dominant frequency, and checks it is want.
func hearTone(t *testing.T, ctx context.Context, p *uaclient.Phone, call string, want float64) uaclient.CallStatus {
	t.Helper()
	for {
		st, err := p.CallStatus(call)
		if err != nil {
			t.Fatal(err)
		}
		if m := st.Media; m != nil && m.Received.AudioPackets >= 25 && m.Received.ToneHz > 0 {
			if math.Abs(m.Received.ToneHz-want) > 25 {
				t.Fatalf("%s hears %.0f Hz from %s, want baresip's %.0f Hz", p.Name(), m.Received.ToneHz, m.Received.LastSource, want)
			}
			if !m.Received.LastSource.Addr().IsLoopback() {
				t.Fatalf("audio from %s, not loopback", m.Received.LastSource)
			}
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s heard no audio from baresip: %+v", p.Name(), st.Media)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// baresipProc is one running baresip and its ctrl_tcp connection.
type baresipProc struct {
	cmd    *exec.Cmd
	sip    net.Addr
	conn   net.Conn
	events chan baresipEvent
	resps  chan baresipResponse
	log    *siptest.LogBuffer
}

type baresipEvent struct {
	Type      string `json:"type"`
	Class     string `json:"class"`
	Direction string `json:"direction"`
	PeerURI   string `json:"peeruri"`
	Param     string `json:"param"`
}

type baresipResponse struct {
	OK    bool   `json:"ok"`
	Data  string `json:"data"`
	Token string `json:"token"`
}

// startBaresip writes a config directory (-f) for one account and starts
// baresip bound to ip: SIP on ip:port, ctrl_tcp on ip:port. Media: baresip
// 1.0.0 binds its RTP sockets to the wildcard address within rtp_ports (no
// setting binds them to one IP) and sends from them, so the kernel picks
// 127.0.0.1 as their source; its SDP names ip (net_interface).
func startBaresip(t *testing.T, ctx context.Context, ip, proxy, user string) *baresipProc {
	t.Helper()
	dir := t.TempDir()
	sipPort, ctrlPort := freePort(t, ip), freePort(t, ip)
	rtp := freeEvenPort(t, ip)
	writeWAV(t, dir+"/tone.wav", baresipToneHz, 60*time.Second)
	// Only the modules needed: no stdio (stdin is not a terminal), no
	// alsa/pulse (no sound card), no stun/turn/ice (loopback).
	writeFile(t, dir, "config", fmt.Sprintf(`poll_method		epoll
sip_listen		%s:%d
net_interface		%s
call_max_calls		4
audio_source		aufile,%s/tone.wav
rtp_ports		%d-%d
module_path		/usr/lib/baresip/modules
module			g711.so
module			aufile.so
module_tmp		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		%s:%d
`, ip, sipPort, ip, dir, rtp, rtp+20, ip, ctrlPort))
	// The account goes through our proxy (outbound), answers by itself and
	// speaks PCMU only, like a basic desk phone.
	writeFile(t, dir, "accounts", fmt.Sprintf(
		"<sip:%s@%s>;auth_pass=%s;outbound=\"sip:%s\";answermode=auto;regint=300;audio_codecs=PCMU\n",
		user, domain, demoPasswords[user], proxy))

	b := &baresipProc{
		sip:    &net.UDPAddr{IP: net.ParseIP(ip), Port: sipPort},
		events: make(chan baresipEvent, 100),
		resps:  make(chan baresipResponse, 10),
		log:    &siptest.LogBuffer{},
	}
	// -t: baresip quits by itself even if this test process dies first.
	b.cmd = exec.Command("baresip", "-f", dir, "-t", strconv.Itoa(int(testTimeout/time.Second)+30))
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	b.cmd.WaitDelay = 2 * time.Second
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { b.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// Ask politely (baresip unregisters), then make sure.
		if b.conn != nil {
			b.send("quit", "")
		}
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			b.cmd.Process.Kill()
			<-exited
		}
		if b.conn != nil {
			b.conn.Close()
		}
		if t.Failed() {
			t.Logf("baresip output:\n%s", tail(strings.ReplaceAll(b.log.String(), "\x00", ""), 8000))
		}
	})

	ctrl := net.JoinHostPort(ip, strconv.Itoa(ctrlPort))
	for b.conn == nil {
		c, err := net.Dial("tcp4", ctrl)
		if err == nil {
			b.conn = c
			break
		}
		select {
		case <-exited:
			t.Fatalf("baresip exited at start:\n%s", b.log.String())
		case <-ctx.Done():
			t.Fatalf("baresip's ctrl_tcp never listened on %s: %v", ctrl, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	go b.read()
	return b
}

// read splits the ctrl_tcp stream: netstrings ("<len>:<json>,") holding
// either an event or a command response.
func (b *baresipProc) read() {
	r := bufio.NewReader(b.conn)
	for {
		lenStr, err := r.ReadString(':')
		if err != nil {
			close(b.events)
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(lenStr, ":"))
		if err != nil || n < 0 || n > 1<<20 {
			close(b.events)
			return
		}
		msg := make([]byte, n+1) // and the trailing ","
		if _, err := io.ReadFull(r, msg); err != nil {
			close(b.events)
			return
		}
		var kind struct {
			Event    bool `json:"event"`
			Response bool `json:"response"`
		}
		json.Unmarshal(msg[:n], &kind)
		switch {
		case kind.Event:
			var e baresipEvent
			if json.Unmarshal(msg[:n], &e) == nil {
				select {
				case b.events <- e:
				default: // nobody reads events this old
				}
			}
		case kind.Response:
			var res baresipResponse
			if json.Unmarshal(msg[:n], &res) == nil {
				b.resps <- res
			}
		}
	}
}

var baresipToken struct {
	sync.Mutex
	n int
}

func (b *baresipProc) send(cmd, params string) (string, error) {
	baresipToken.Lock()
	baresipToken.n++
	tok := strconv.Itoa(baresipToken.n)
	baresipToken.Unlock()
	msg, _ := json.Marshal(map[string]string{"command": cmd, "params": params, "token": tok})
	_, err := fmt.Fprintf(b.conn, "%d:%s,", len(msg), msg)
	return tok, err
}

// command runs a ctrl_tcp command and waits for its response.
func (b *baresipProc) command(ctx context.Context, cmd, params string) error {
	tok, err := b.send(cmd, params)
	if err != nil {
		return fmt.Errorf("baresip %s: %w", cmd, err)
	}
	for {
		select {
		case res := <-b.resps:
			if res.Token != tok {
				continue
			}
			if !res.OK {
				return fmt.Errorf("baresip %s %q: refused: %s", cmd, params, res.Data)
			}
			return nil
		case <-ctx.Done():
			return fmt.Errorf("baresip %s: no response: %w", cmd, ctx.Err())
		}
	}
}

// waitEvent waits for the next event of type typ, skipping others.
func (b *baresipProc) waitEvent(ctx context.Context, typ string) (baresipEvent, error) {
	var seen []string
	for {
		select {
		case e, ok := <-b.events:
			if !ok {
				return e, fmt.Errorf("baresip closed ctrl_tcp waiting for %s (saw %v)", typ, seen)
			}
			if e.Type == typ {
				return e, nil
			}
			seen = append(seen, e.Type)
		case <-ctx.Done():
			return baresipEvent{}, fmt.Errorf("no %s event from baresip (saw %v): %w", typ, seen, ctx.Err())
		}
	}
}

// writeWAV writes a mono 8 kHz 16-bit PCM sine: aufile needs the codec's
// rate and channels exactly (it does not resample).
func writeWAV(t *testing.T, path string, hz float64, d time.Duration) {
	t.Helper()
	const rate = 8000
	n := int(d.Seconds() * rate)
	data := make([]byte, 44+2*n)
	copy(data[0:], "RIFF")
	binary.LittleEndian.PutUint32(data[4:], uint32(36+2*n))
	copy(data[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(data[16:], 16)     // fmt chunk size
	binary.LittleEndian.PutUint16(data[20:], 1)      // PCM
	binary.LittleEndian.PutUint16(data[22:], 1)      // mono
	binary.LittleEndian.PutUint32(data[24:], rate)   // sample rate
	binary.LittleEndian.PutUint32(data[28:], rate*2) // byte rate
	binary.LittleEndian.PutUint16(data[32:], 2)      // block align
	binary.LittleEndian.PutUint16(data[34:], 16)     // bits per sample
	copy(data[36:], "data")
	binary.LittleEndian.PutUint32(data[40:], uint32(2*n))
	for i := range n {
		v := int16(8000 * math.Sin(2*math.Pi*hz*float64(i)/rate))
		binary.LittleEndian.PutUint16(data[44+2*i:], uint16(v))
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
