package torturetest

// Daemon is a column of the answers table: a daemon, or one face of it
// where its faces answer differently.
type Daemon int

// The columns, in the table's order.
const (
	// Registrar: REGISTERs for a domain it does not serve get 404; other
	// methods 405; none creates a binding.
	Registrar Daemon = iota
	// PBX: the numbers are in no dial plan (404); none becomes a call.
	PBX
	// SBCAccess: the phones' face; a request for a domain the SBC does
	// not serve gets 403.
	SBCAccess
	// SBCCore: the face towards the PBX; UserB is no registered phone.
	SBCCore
	// Phone: a uaclient as a UAS; a stranger's INVITE rings (180), as
	// auto-answer stays off.
	Phone
	// Carrier from a trusted source: an INVITE to no E.164 number gets
	// 484; even a trusted peer may not relay through a preloaded Route.
	Carrier
	// CarrierUntrusted: the default ACL (the peer alone) answers 403 to
	// whatever parses past the receive path.
	CarrierUntrusted
	// Proxy: not our domain and relaying is off (403); REGISTER has no
	// registrar behind it (503); an in-dialog request whose Route does not
	// name us is Relaying Denied (403).
	Proxy
	// Endpoint: a bare sipnet endpoint that runs sipcheck and answers 200
	// to INVITE, OPTIONS and MESSAGE, 405 to anything else.
	Endpoint
	columns
)

// s is Silent, short so the table's columns line up.
const s = Silent

// answers is what each column answers over UDP to each of the 49 RFC 4475
// messages (Stream derives TCP). The rows that every column but the
// untrusted carrier shares are the shared receive path's (sipcheck):
// malformed headers 400, a bad version 505, an unsupported Require 420, a
// bad Max-Forwards 483, an unsupported scheme 416, a body the daemon
// cannot take 415/406, responses silence. The rest reach each daemon's
// own logic. wsinv is an in-dialog INVITE whose To tag names no dialog
// (481); inv2543 is the RFC 2543 INVITE an element should still take
// (RFC 4475 §3.4.1).
var answers = map[string][columns]int{
	//                         reg  pbx  sbcA sbcC phone carr untr prox endp
	"invalid/badaspec.dat":   {400, 400, 400, 400, 400, 400, 400, 400, 400},
	"invalid/badbranch.dat":  {400, 400, 400, 400, 400, 400, 403, 400, 400},
	"invalid/baddate.dat":    {400, 400, 400, 400, 400, 400, 403, 400, 400},
	"invalid/baddn.dat":      {400, 400, 400, 400, 400, 400, 400, 400, 400},
	"invalid/badinv01.dat":   {400, 400, 400, 400, 400, 400, 400, 400, 400},
	"invalid/badvers.dat":    {505, 505, 505, 505, 505, 505, 505, 505, 505},
	"invalid/bcast.dat":      {s, s, s, s, s, s, s, s, s},
	"invalid/bext01.dat":     {420, 420, 420, 420, 420, 420, 403, 420, 420},
	"invalid/bigcode.dat":    {s, s, s, s, s, s, s, s, s},
	"invalid/clerr.dat":      {400, 400, 400, 400, 400, 400, 400, 400, 400},
	"invalid/cparam01.dat":   {404, 405, 404, 403, 405, 405, 403, 503, 405},
	"invalid/cparam02.dat":   {404, 405, 404, 403, 405, 405, 403, 503, 405},
	"invalid/escruri.dat":    {400, 400, 400, 400, 400, 400, 403, 400, 400},
	"invalid/insuf.dat":      {400, 400, 400, 400, 400, 400, 403, 400, 400},
	"invalid/inv2543.dat":    {405, 404, 403, 404, 180, 484, 403, 403, 200},
	"invalid/invut.dat":      {415, 415, 415, 415, 415, 415, 403, 403, 415},
	"invalid/ltgtruri.dat":   {400, 400, 400, 400, 400, 400, 400, 400, 400},
	"invalid/lwsruri.dat":    {400, 400, 400, 400, 400, 400, 400, 400, 400},
	"invalid/lwsstart.dat":   {400, 400, 400, 400, 400, 400, 400, 400, 400},
	"invalid/mcl01.dat":      {400, 400, 400, 400, 400, 400, 403, 400, 400},
	"invalid/mismatch01.dat": {400, 400, 400, 400, 400, 400, 403, 400, 400},
	"invalid/mismatch02.dat": {400, 400, 400, 400, 400, 400, 403, 400, 400},
	"invalid/multi01.dat":    {400, 400, 400, 400, 400, 400, 403, 400, 400},
	"invalid/ncl.dat":        {400, 400, 400, 400, 400, 400, 400, 400, 400},
	"invalid/novelsc.dat":    {416, 416, 416, 416, 416, 416, 416, 416, 416},
	"invalid/quotbal.dat":    {400, 400, 400, 400, 400, 400, 400, 400, 400},
	"invalid/regaut01.dat":   {404, 405, 404, 403, 405, 405, 403, 503, 405},
	"invalid/regbadct.dat":   {400, 400, 400, 400, 400, 400, 403, 400, 400},
	"invalid/regescrt.dat":   {400, 400, 400, 400, 400, 400, 403, 400, 400},
	"invalid/scalar02.dat":   {400, 400, 400, 400, 400, 400, 400, 400, 400},
	"invalid/scalarlg.dat":   {s, s, s, s, s, s, s, s, s},
	"invalid/sdp01.dat":      {406, 406, 406, 406, 406, 406, 403, 403, 406},
	"invalid/trws.dat":       {400, 400, 400, 400, 400, 400, 400, 400, 400},
	"invalid/unkscm.dat":     {416, 416, 416, 416, 416, 416, 403, 416, 416},
	"invalid/unksm2.dat":     {416, 416, 416, 416, 416, 416, 403, 416, 416},
	"invalid/zeromf.dat":     {483, 483, 483, 483, 483, 483, 403, 483, 483},
	"valid/dblreq.dat":       {404, 405, 404, 403, 405, 405, 403, 503, 405},
	"valid/esc01.dat":        {405, 404, 403, 404, 180, 484, 403, 403, 200},
	"valid/esc02.dat":        {405, 405, 501, 501, 405, 405, 403, 403, 405},
	"valid/escnull.dat":      {404, 405, 404, 403, 405, 405, 403, 503, 405},
	"valid/intmeth.dat":      {405, 405, 501, 501, 405, 405, 403, 403, 405},
	"valid/longreq.dat":      {405, 404, 403, 404, 180, 484, 403, 403, 200},
	"valid/lwsdisp.dat":      {200, 200, 403, 200, 200, 200, 403, 403, 200},
	"valid/mpart01.dat":      {415, 415, 415, 415, 415, 403, 403, 403, 415},
	"valid/noreason.dat":     {s, s, s, s, s, s, s, s, s},
	"valid/semiuri.dat":      {200, 200, 403, 200, 200, 200, 403, 403, 200},
	"valid/transports.dat":   {200, 200, 403, 200, 200, 200, 403, 403, 200},
	"valid/unreason.dat":     {s, s, s, s, s, s, s, s, s},
	"valid/wsinv.dat":        {405, 481, 481, 481, 481, 481, 403, 403, 200},
}

// Want is d's column: the UDP answer to each message, for Check.
func Want(d Daemon) map[string]int {
	want := make(map[string]int, len(answers))
	for name, row := range answers {
		want[name] = row[d]
	}
	return want
}
