package uaclient

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// DTMF modes (the dtmf_mode setting).
const (
	DTMFRFC4733 = "rfc4733"
	DTMFInfo    = "info"
)

// infoDTMFDuration is the Duration written in application/dtmf-relay, ms.
const infoDTMFDuration = 160

// sendDTMFInfo sends each digit in its own INFO (application/dtmf-relay,
// the de-facto format: "Signal=5" and "Duration=160" lines), waiting for
// each answer before the next so the digits keep their order.
func (c *Call) sendDTMFInfo(ctx context.Context, digits string) error {
	p := c.p
	for _, d := range digits {
		req := p.inDialogRequest(c, sip.INFO, 0)
		req.AppendHeader(p.contactHeader(p.currentSettings()))
		req.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
		req.SetBody([]byte(fmt.Sprintf("Signal=%c\r\nDuration=%d\r\n", d, infoDTMFDuration)))
		res, _, err := p.doAuth(ctx, req)
		if err != nil {
			return err
		}
		if !res.IsSuccess() {
			return &ResponseError{Code: res.StatusCode, Reason: res.Reason}
		}
	}
	return nil
}

// parseDTMFInfo reads the digit out of an INFO body: application/dtmf-relay
// ("Signal=5\r\nDuration=160") or application/dtmf (just "5").
func parseDTMFInfo(contentType string, body []byte) (string, error) {
	ct := strings.ToLower(strings.TrimSpace(contentType))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	var sig string
	switch ct {
	case "application/dtmf-relay":
		found := false
		for _, line := range strings.Split(string(body), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "Signal") {
				continue
			}
			sig, found = strings.TrimSpace(v), true
			break
		}
		if !found {
			return "", fmt.Errorf("no Signal= line in application/dtmf-relay body")
		}
	case "application/dtmf":
		sig = strings.TrimSpace(string(body))
	default:
		return "", errUnsupportedType
	}
	// Some phones send the RFC 4733 event number instead of the character.
	switch sig {
	case "10":
		sig = "*"
	case "11":
		sig = "#"
	case "12", "13", "14", "15":
		n, _ := strconv.Atoi(sig)
		sig = string(rune('A' + n - 12))
	}
	sig = strings.ToUpper(sig)
	if len(sig) != 1 || !strings.Contains("0123456789*#ABCD", sig) {
		return "", fmt.Errorf("signal %q is not a DTMF digit", sig)
	}
	return sig, nil
}

var errUnsupportedType = fmt.Errorf("unsupported content type")

// onInfo takes DTMF in INFO inside a dialog; other INFO packages are
// refused with 415 and the types we accept.
func (p *Phone) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	c := p.checkedInDialog(req, tx)
	if c == nil {
		return
	}
	if len(req.Body()) == 0 {
		// An empty INFO is a keep-alive probe of the dialog (RFC 6086 §4.2.2).
		p.respondLog(tx, req, sip.StatusOK, "OK")
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	digit, err := parseDTMFInfo(ct, req.Body())
	if err == errUnsupportedType {
		p.respondLog(tx, req, sip.StatusUnsupportedMediaType, "Unsupported Media Type",
			sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		return
	}
	if err != nil {
		p.respondLog(tx, req, sip.StatusBadRequest, "Bad DTMF", p.warning(399, err.Error()))
		return
	}
	c.log.Info("dtmf received in INFO", "digit", digit, "source", req.Source())
	p.mu.Lock()
	if len(c.dtmfInfoRecv) < 256 {
		c.dtmfInfoRecv += digit
	}
	p.notifyLocked()
	p.mu.Unlock()
	p.respondLog(tx, req, sip.StatusOK, "OK")
}
