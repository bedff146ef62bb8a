package sipnet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
)

// WSS is SIP over secure WebSocket (RFC 7118), the browser's transport.
const WSS = "wss"

// ServeWSS serves SIP over WebSocket on ln, whose connections are already
// TLS (tls.Listen, or SplitWebSocket of one) and start with the HTTP
// upgrade: sipgo answers it with Sec-WebSocket-Protocol: sip. Requests
// sent with transport WSS go back over the connection the peer opened (a
// browser cannot accept connections), and their Via names ln's port. Call
// it before Start; the caller closes ln.
func (e *Endpoint) ServeWSS(ln net.Listener) error {
	ta, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return fmt.Errorf("sipnet: wss listener %v is not TCP", ln.Addr())
	}
	c, err := sipgo.NewClient(e.UA,
		sipgo.WithClientLogger(e.log),
		sipgo.WithClientHostname(e.addr.Addr().String()),
		sipgo.WithClientPort(ta.Port))
	if err != nil {
		return fmt.Errorf("sipnet: wss client: %w", err)
	}
	e.clients[WSS] = c
	e.serveWG.Add(1)
	go func() {
		defer e.serveWG.Done()
		if err := e.Server.ServeWSS(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			e.log.Error("sip wss serve stopped", "err", err)
		}
	}()
	return nil
}

// maxUpgradeHead bounds the HTTP request head SplitWebSocket reads to
// classify a connection.
const maxUpgradeHead = 16 << 10

// SplitWebSocket shares one listener between SIP over WebSocket and plain
// HTTP(S): a browser loads the phone page and opens its SIP WebSocket on the
// same origin (one certificate, one exception to accept). Each accepted
// connection's request head is read (within 10 s); an Upgrade: websocket
// goes to ws, anything else to web. Both replay the bytes read. Closing
// either returned listener closes ln.
func SplitWebSocket(ln net.Listener) (ws, web net.Listener) {
	s := &splitter{ln: ln, done: make(chan struct{})}
	s.ws = &chanListener{s: s, ch: make(chan net.Conn)}
	s.web = &chanListener{s: s, ch: make(chan net.Conn)}
	go s.run()
	return s.ws, s.web
}

type splitter struct {
	ln      net.Listener
	ws, web *chanListener
	done    chan struct{}
	once    sync.Once
}

func (s *splitter) close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		err = s.ln.Close()
	})
	return err
}

func (s *splitter) run() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			s.close()
			return
		}
		go s.classify(conn)
	}
}

func (s *splitter) classify(conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(conn, maxUpgradeHead)
	upgrade, err := isUpgrade(br)
	_ = conn.SetReadDeadline(time.Time{})
	if err != nil {
		conn.Close()
		return
	}
	to := s.web
	if upgrade {
		to = s.ws
	}
	select {
	case to.ch <- &replayConn{Conn: conn, r: br}:
	case <-s.done:
		conn.Close()
	}
}

// isUpgrade peeks at the request head without consuming it: each Peek
// of one byte more than is buffered reads whatever the peer has sent.
func isUpgrade(br *bufio.Reader) (bool, error) {
	for {
		if br.Buffered() >= maxUpgradeHead {
			return false, fmt.Errorf("sipnet: request head over %d bytes", maxUpgradeHead)
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			return false, err
		}
		head, _ := br.Peek(br.Buffered())
		if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
			req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head[:i+4])))
			if err != nil {
				return false, err
			}
			return strings.EqualFold(req.Header.Get("Upgrade"), "websocket"), nil
		}
	}
}

// replayConn reads what classify already buffered first.
type replayConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *replayConn) Read(b []byte) (int, error) { return c.r.Read(b) }

type chanListener struct {
	s  *splitter
	ch chan net.Conn
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.s.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error   { return l.s.close() }
func (l *chanListener) Addr() net.Addr { return l.s.ln.Addr() }
