package b2bua

import (
	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipdialog"
)

// Each leg keeps its RFC 3261 §12 state in a sipdialog.Dialog: a B2BUA
// holds two per call, one as UAS towards the caller and one as UAC towards
// the callee.

// request builds an in-dialog request on d (sipdialog.Dialog.Request: cseq
// 0 takes the next local sequence number, ACK and CANCEL pass the
// INVITE's). The PBX sends it over UDP whatever the target's or first
// route's transport parameter says: it speaks UDP to its phones and trunk.
func request(d *sipdialog.Dialog, method sip.RequestMethod, cseq uint32) *sip.Request {
	req := d.Request(method, cseq)
	req.SetTransport("UDP")
	return req
}
